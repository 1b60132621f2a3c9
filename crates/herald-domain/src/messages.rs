//! Messages in every kind of conversation: who gets a copy, reply translation, read receipts,
//! edits and revokes across boxes, dialogs, and the update sequences. The store only stores
//! (see `store.rs`); every rule is here.
//!
//! - Private chats and basic groups: one copy per participant's user box, tied by
//!   `logical_id`; the sender's copy is `out`.
//! - Channels (supergroups and broadcast channels): one copy in the channel's box, whatever
//!   the member count; per member only the read mark.

use crate::bus::{Event, EventBus, Rendered};
use crate::clock::{random_u64, Clock};
use crate::error::{GroupError, MessageError, Result};
use crate::limits::{FloodTable, Limiter};
use crate::model::*;
use crate::store::{Applied, BoxOp, GroupStore, MessageStore, NewCopy};
use std::sync::Arc;

/// Telegram's `message_length_max`, counted in UTF-16 code units as clients count.
pub const MESSAGE_LENGTH_MAX: usize = 4096;
/// At most this many updates per `getDifference` answer; more gives a slice.
pub const DIFFERENCE_LIMIT: usize = 100;
pub const HISTORY_LIMIT_MAX: i32 = 100;
pub const IDS_MAX: usize = 200;
/// Messages deleted per write job when a whole dialog goes.
pub const DELETE_CHUNK: usize = 1000;
/// Formatting spans per message, and the size of their string parts.
pub const ENTITIES_MAX: usize = 100;
pub const ENTITY_URL_MAX: usize = 2048;
/// The strings of all of a message's entities together (URLs, languages), so that one message
/// cannot carry hundreds of kilobytes of URLs into every answer that contains it.
pub const ENTITY_STRINGS_MAX: usize = 8192;
pub const ENTITY_LANGUAGE_MAX: usize = 64;

/// Text must have a visible character (`text::has_visible`: not only spaces and invisible
/// characters) and at most [`MESSAGE_LENGTH_MAX`] UTF-16 units; entities at most
/// [`ENTITIES_MAX`], each inside the text, with bounded strings. These bounds also bound
/// what one message can make the server store and send.
pub fn validate_text(text: &str, entities: &[Entity]) -> Result<()> {
    if !crate::text::has_visible(text) {
        return Err(MessageError::MessageEmpty.into());
    }
    let len = text.encode_utf16().count();
    if len > MESSAGE_LENGTH_MAX {
        return Err(MessageError::MessageTooLong.into());
    }
    validate_entities(len, entities)
}

/// A media message's caption: may be empty, at most [`crate::files::CAPTION_MAX`] UTF-16
/// units (`MEDIA_CAPTION_TOO_LONG`), entities as for text.
pub fn validate_caption(text: &str, entities: &[Entity]) -> Result<()> {
    let len = text.encode_utf16().count();
    if len > crate::files::CAPTION_MAX {
        return Err(crate::error::FileError::CaptionTooLong.into());
    }
    validate_entities(len, entities)
}

fn validate_entities(len: usize, entities: &[Entity]) -> Result<()> {
    let inside = |e: &Entity| e.offset >= 0 && e.length > 0 && (e.offset as usize).saturating_add(e.length as usize) <= len;
    let small = |e: &Entity| match &e.kind {
        EntityKind::TextUrl { url } => url.len() <= ENTITY_URL_MAX,
        EntityKind::Pre { language } => language.len() <= ENTITY_LANGUAGE_MAX,
        _ => true,
    };
    let strings: usize = entities.iter().map(|e| e.kind.extra_bytes()).sum();
    if entities.len() > ENTITIES_MAX || strings > ENTITY_STRINGS_MAX || !entities.iter().all(|e| inside(e) && small(e)) {
        return Err(MessageError::EntityBoundsInvalid.into());
    }
    Ok(())
}

/// What one message costs the store beyond its text (rows, indexes, the update log), for the
/// storage quota (the `stored_bytes` row of [`FloodTable`]).
pub const MESSAGE_OVERHEAD_BYTES: usize = 256;

pub struct MessageService {
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) groups: Arc<dyn GroupStore>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sends: Limiter<UserId>,
    /// Accounts, for the forwards privacy of a forward's origin (see [`Self::with_accounts`]).
    pub(crate) accounts: Option<Arc<dyn crate::store::AccountStore>>,
    text_bytes: Limiter<UserId>,
    counted_views: Limiter<UserId>,
    typing: Limiter<(UserId, GroupId, bool)>,
}

/// What the sender's session gets back from a send.
#[derive(Clone, Debug)]
pub struct Sent {
    pub update: PtsUpdate,
    /// The box the update belongs to (the sender's, or the channel's).
    pub owner: BoxId,
    pub duplicate: bool,
}

pub struct SendRequest {
    pub from: UserId,
    pub peer: Peer,
    pub origin_key: i64,
    pub random_id: i64,
    pub text: String,
    pub entities: Vec<Entity>,
    pub reply_to: Option<i32>,
}

/// Items one album may hold (Telegram's limit).
pub const ALBUM_MAX: usize = 10;

/// What a send may carry besides its text.
#[derive(Default)]
pub(crate) struct Extra {
    pub fwd: Option<Forward>,
    pub media: Option<Media>,
    pub grouped_id: Option<i64>,
}

/// A message as the service composes it before the store numbers it.
fn draft(from: UserId, peer: Peer, date: i32, text: String, entities: Vec<Entity>) -> Message {
    Message::draft(from, peer, date, text, entities, crate::ids::next())
}

/// Blocked users one `contacts.getBlocked` page lists at most.
pub const BLOCKED_PAGE_MAX: i32 = 100;

/// Distinct `@username`s one message may mention (each is looked up among the members).
pub const USERNAME_MENTIONS_MAX: usize = 20;

/// `@username` mentions in `text` that no entity of the client's covers, as Telegram's
/// server finds them: an `@` at the start or after a character that cannot be part of a
/// username, followed by a valid username (5–32 of `a-z0-9_`, a letter first). Returns the
/// `messageEntityMention` entities to add (offsets in UTF-16 units) and the lowercased
/// usernames, at most [`USERNAME_MENTIONS_MAX`] distinct ones.
pub fn username_mentions(text: &str, entities: &[Entity]) -> (Vec<Entity>, Vec<String>) {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // Formatting nests around a mention; anything else that covers the span (code, a link,
    // the client's own mention entity) means the server adds no entity there.
    let formatting = |k: &EntityKind| {
        matches!(k, EntityKind::Bold | EntityKind::Italic | EntityKind::Underline | EntityKind::Strike | EntityKind::Spoiler | EntityKind::Blockquote { .. })
    };
    let covered = |from: i32, to: i32| entities.iter().any(|e| !formatting(&e.kind) && e.offset < to && from < e.offset + e.length);
    let (mut found, mut names) = (Vec::new(), Vec::<String>::new());
    // The client's own `messageEntityMention`s name users too (the entity is kept as sent).
    let utf16: Vec<u16> = text.encode_utf16().collect();
    for e in entities.iter().filter(|e| e.kind == EntityKind::Mention) {
        let span = utf16.get(e.offset.max(0) as usize..(e.offset.max(0) + e.length.max(0)) as usize).unwrap_or(&[]);
        let name = String::from_utf16_lossy(span);
        if let Some(name) = name.strip_prefix('@').filter(|n| crate::accounts::valid_username(n)) {
            let lower = name.to_ascii_lowercase();
            if !names.contains(&lower) && names.len() < USERNAME_MENTIONS_MAX {
                names.push(lower);
            }
        }
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut at16 = 0i32; // the UTF-16 offset of `chars[i]`
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '@' && !prev.is_some_and(|p| word(p) || p == '@') {
            let name: String = text[at + 1..].chars().take_while(|c| word(*c)).collect();
            let len = 1 + name.len() as i32; // ASCII: one UTF-16 unit per byte
            if crate::accounts::valid_username(&name) && !covered(at16, at16 + len) {
                let lower = name.to_ascii_lowercase();
                if !names.contains(&lower) {
                    if names.len() == USERNAME_MENTIONS_MAX {
                        break;
                    }
                    names.push(lower);
                }
                found.push(Entity { offset: at16, length: len, kind: EntityKind::Mention });
            }
            if !name.is_empty() {
                at16 += len;
                i += 1 + name.len();
                prev = name.chars().last();
                continue;
            }
        }
        at16 += c.len_utf16() as i32;
        prev = Some(c);
        i += 1;
    }
    (found, names)
}

/// Adds to `entities` the `messageEntityMention`s Telegram's server adds for `@username`s
/// in `text` (within [`ENTITIES_MAX`], in offset order); returns the usernames found.
fn add_username_entities(text: &str, entities: &mut Vec<Entity>) -> Vec<String> {
    let (found, names) = username_mentions(text, entities);
    let room = ENTITIES_MAX.saturating_sub(entities.len());
    entities.extend(found.into_iter().take(room));
    entities.sort_by_key(|e| e.offset);
    names
}

/// Users a message mentions by name entity (the `@username` form needs a lookup and is
/// resolved by the caller).
fn named_mentions(entities: &[Entity]) -> Vec<i64> {
    let mut v: Vec<i64> = entities
        .iter()
        .filter_map(|e| match e.kind {
            EntityKind::MentionName { user_id } => Some(user_id),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

impl MessageService {
    pub fn new(store: Arc<dyn MessageStore>, groups: Arc<dyn GroupStore>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(store, groups, bus, clock, &FloodTable::default())
    }

    /// Lets forwards read their origin's privacy settings (without it, origins are shown).
    pub fn with_accounts(mut self, accounts: Arc<dyn crate::store::AccountStore>) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// With the `sends`, `stored_bytes`, `counted_views` and `typing` rows of `limits`.
    pub fn with_limits(store: Arc<dyn MessageStore>, groups: Arc<dyn GroupStore>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>, limits: &FloodTable) -> Self {
        Self {
            store,
            groups,
            bus,
            clock,
            sends: Limiter::new(limits.sends),
            accounts: None,
            text_bytes: Limiter::new(limits.stored_bytes),
            counted_views: Limiter::silent(limits.counted_views),
            typing: Limiter::silent(limits.typing),
        }
    }

    /// Spends one send and the message's stored bytes from `who`'s budgets, or FLOOD_WAIT_X.
    fn spend(&self, who: UserId, text: &str, entities: &[Entity]) -> Result<()> {
        let now = self.clock.now_ms();
        let bytes = MESSAGE_OVERHEAD_BYTES + text.len() + entities.len() * 16 + entities.iter().map(|e| e.kind.extra_bytes()).sum::<usize>();
        self.sends.take(who, 1.0, now).map_err(MessageError::FloodWait)?;
        self.text_bytes.take(who, bytes as f64, now).map_err(MessageError::FloodWait)?;
        Ok(())
    }

    /// The event bus the service publishes on.
    pub fn bus(&self) -> &dyn EventBus {
        self.bus.as_ref()
    }

    pub fn now(&self) -> i32 {
        self.clock.now_secs() as i32
    }

    /// Publishes what a change did: user-box updates to each user, channel-box updates once on
    /// the channel's topic. `origin` (user, key) gets its own result as the RPC answer.
    pub fn publish(&self, applied: &Applied, origin: Option<(UserId, i64)>) {
        for (owner, update) in &applied.updates {
            match owner {
                BoxId::User(user) => {
                    let origin = origin.filter(|(u, _)| u == user).map(|(_, k)| k);
                    self.bus.publish(Event::Updates { user: *user, origin, updates: vec![update.clone()] });
                }
                BoxId::Channel(channel) => {
                    self.bus.publish(Event::Channel { channel: *channel, origin, updates: vec![update.clone()], rendered: Rendered::default() });
                }
            }
        }
    }

    /// Applies and publishes; returns the updates.
    pub async fn apply(&self, ops: Vec<(BoxId, BoxOp)>, origin: Option<(UserId, i64)>) -> Result<Applied> {
        if ops.is_empty() {
            return Ok(Applied::default());
        }
        let applied = self.store.apply(ops, None).await?;
        self.publish(&applied, origin);
        Ok(applied)
    }

    // ---- groups: who may do what -------------------------------------------------------

    /// The group and the user's row in it (None when never a member).
    pub async fn group_and_member(&self, group: GroupId, user: UserId) -> Result<(Group, Option<Member>)> {
        let g = self.groups.group(group).await?.ok_or(GroupError::ChannelInvalid)?;
        let m = self.groups.member(group, user).await?;
        Ok((g, m))
    }

    /// A channel `user` may read: a member's, or a public one they were not kicked from.
    pub async fn readable_channel(&self, group: GroupId, user: UserId) -> Result<(Group, Option<Member>)> {
        let (g, m) = self.group_and_member(group, user).await?;
        let role = m.as_ref().map(|m| m.role);
        let ok = !g.deleted && g.kind.is_channel() && (role.is_some_and(Role::is_member) || (g.username.is_some() && role != Some(Role::Kicked)));
        if !ok {
            return Err(GroupError::ChannelPrivate.into());
        }
        Ok((g, m))
    }

    /// May `m` post in `g` now? (Telegram's errors: CHAT_ADMIN_REQUIRED in broadcast channels,
    /// CHAT_WRITE_FORBIDDEN when restricted or no longer a member, SLOWMODE_WAIT_X.)
    fn check_post(&self, g: &Group, m: Option<&Member>, now: i32) -> Result<()> {
        self.check_post_in_batch(g, m, now, false)
    }

    /// [`Self::check_post`] for a later message of a batch (a forward of several): slow
    /// mode let the first through, so it lets the batch through.
    fn check_post_in_batch(&self, g: &Group, m: Option<&Member>, now: i32, later_in_batch: bool) -> Result<()> {
        let Some(m) = m.filter(|m| m.role.is_member()) else {
            return Err(if g.kind.is_channel() { GroupError::ChannelPrivate } else { GroupError::ChatWriteForbidden }.into());
        };
        if g.deleted {
            return Err(GroupError::ChannelPrivate.into());
        }
        if g.migrated_to.is_some() {
            return Err(GroupError::ChatMigrated.into());
        }
        if g.kind == GroupKind::Broadcast {
            return if m.role == Role::Creator || m.admin_rights.has(AdminRights::POST_MESSAGES) { Ok(()) } else { Err(GroupError::ChatAdminRequired.into()) };
        }
        if m.role.is_admin() {
            return Ok(());
        }
        if m.banned.forbids(BannedRights::SEND_MESSAGES, now) || g.default_banned.forbids(BannedRights::SEND_MESSAGES, now) {
            return Err(GroupError::ChatWriteForbidden.into());
        }
        if g.slowmode_seconds > 0 && m.last_post > 0 && m.last_post + g.slowmode_seconds > now && !later_in_batch {
            return Err(GroupError::SlowmodeWait((m.last_post + g.slowmode_seconds - now) as i64).into());
        }
        Ok(())
    }

    // ---- sending -----------------------------------------------------------------------

    /// Whether `from` may post to `peer` now: rights, bans and membership in groups and
    /// channels (slow mode aside); for private chats the send itself decides (blocks).
    pub async fn check_can_post(&self, from: UserId, peer: Peer) -> Result<()> {
        match peer {
            Peer::User(_) => Ok(()),
            Peer::Chat(g) | Peer::Channel(g) => {
                let (group, member) = self.group_and_member(g, from).await?;
                self.check_post_in_batch(&group, member.as_ref(), self.now(), true)
            }
        }
    }

    pub async fn send(&self, req: SendRequest) -> Result<Sent> {
        self.send_with(req, Extra::default(), false).await
    }

    /// `messages.sendMedia`: a message carrying `media`, its text the caption.
    pub async fn send_media(&self, req: SendRequest, media: Media) -> Result<Sent> {
        self.send_with(req, Extra { media: Some(media), ..Default::default() }, false).await
    }

    /// `messages.sendMultiMedia`: an album, one message per item sharing a `grouped_id`, in
    /// order (each its own send under its own random id, so a retry creates nothing twice).
    pub async fn send_album(&self, items: Vec<(SendRequest, Media)>) -> Result<Vec<Sent>> {
        if items.is_empty() || items.len() > ALBUM_MAX {
            return Err(crate::error::FileError::MediaInvalid.into());
        }
        let grouped_id = (random_u64() >> 1) as i64;
        let mut out = Vec::with_capacity(items.len());
        for (i, (req, media)) in items.into_iter().enumerate() {
            let extra = Extra { media: Some(media), grouped_id: Some(grouped_id), ..Default::default() };
            out.push(self.send_with(req, extra, i > 0).await?);
        }
        Ok(out)
    }

    /// A send that may carry a forward header, media and an album id; `later_in_batch` for
    /// the second and later messages of one forward or album (see
    /// [`Self::check_post_in_batch`]).
    pub(crate) async fn send_with(&self, req: SendRequest, extra: Extra, later_in_batch: bool) -> Result<Sent> {
        match &extra.media {
            Some(_) => validate_caption(&req.text, &req.entities)?,
            None => validate_text(&req.text, &req.entities)?,
        }
        let now = self.now();
        let mut msg = draft(req.from, req.peer, now, req.text, req.entities);
        msg.fwd = extra.fwd.map(Box::new);
        msg.media = extra.media.map(Box::new);
        msg.grouped_id = extra.grouped_id;
        match req.peer {
            Peer::User(to) => {
                self.spend(req.from, &msg.text, &msg.entities)?;
                self.send_private(req.from, to, msg, req.random_id, req.reply_to, req.origin_key).await
            }
            Peer::Chat(g) => {
                let (group, member) = self.group_and_member(g, req.from).await?;
                self.check_post_in_batch(&group, member.as_ref(), now, later_in_batch)?;
                self.spend(req.from, &msg.text, &msg.entities)?;
                self.find_mentions(g, &mut msg).await?;
                let members = self.groups.member_ids(g).await?;
                msg.reply_to = req.reply_to;
                self.send_to_boxes(req.from, &members, msg, Some(req.random_id), Some(req.origin_key)).await
            }
            Peer::Channel(g) => {
                let (group, member) = self.group_and_member(g, req.from).await?;
                self.check_post_in_batch(&group, member.as_ref(), now, later_in_batch)?;
                self.spend(req.from, &msg.text, &msg.entities)?;
                if group.kind != GroupKind::Broadcast {
                    self.find_mentions(g, &mut msg).await?;
                }
                if let Some(r) = req.reply_to {
                    if let Some(target) = self.store.messages_by_ids(BoxId::Channel(g), &[r]).await?.into_iter().next() {
                        msg.reply_to = Some(r);
                        if target.from != req.from && !msg.mentions.contains(&target.from.0) {
                            msg.mentions.push(target.from.0);
                        }
                    }
                }
                if group.kind == GroupKind::Broadcast {
                    msg.post = true;
                    msg.mentions.clear();
                }
                self.send_to_channel(&group, msg, Some(req.random_id), req.origin_key).await
            }
        }
    }

    /// Who a group message mentions: users named by entity, and members named as
    /// `@username` (which also get the `messageEntityMention` the client did not send).
    async fn find_mentions(&self, g: GroupId, msg: &mut Message) -> Result<()> {
        let mut mentions = named_mentions(&msg.entities);
        let names = add_username_entities(&msg.text, &mut msg.entities);
        if !names.is_empty() {
            mentions.extend(self.groups.members_by_usernames(g, &names).await?.into_iter().map(|u| u.0));
        }
        mentions.retain(|u| *u != msg.from.0);
        mentions.sort();
        mentions.dedup();
        msg.mentions = mentions;
        Ok(())
    }

    async fn send_private(&self, from: UserId, to: UserId, mut msg: Message, random_id: i64, reply_to: Option<i32>, origin_key: i64) -> Result<Sent> {
        // A reply is kept only if it points into this dialog; the recipient's copy points at
        // the recipient's copy of the same message.
        let mut their_reply = None;
        if let Some(r) = reply_to {
            if let Some(target) = self.store.messages_by_ids(BoxId::User(from), &[r]).await?.into_iter().next().filter(|m| m.peer == Peer::User(to)) {
                msg.reply_to = Some(r);
                their_reply = self.copy_in(target.logical_id, BoxId::User(to)).await?;
            }
        }
        let mut ops = Vec::with_capacity(3);
        if to != from {
            // Checked in the write itself: no extra read on the hot path, and no block can
            // land between a check and the send.
            ops.push((BoxId::User(to), BoxOp::UnlessBlocked { a: from, b: to }));
            // A first message starts the chat with the sender's default auto-delete period.
            ops.push((BoxId::User(from), BoxOp::NewChatTtl { from, to }));
        }
        ops.push((BoxId::User(from), BoxOp::Append(NewCopy { message: msg.clone(), random_id: Some(random_id), unread: false })));
        if to != from {
            let copy = Message { peer: Peer::User(from), out: false, reply_to: their_reply, ..msg };
            ops.push((BoxId::User(to), BoxOp::Append(NewCopy { message: copy, random_id: None, unread: true })));
        }
        match self.apply_send(ops, BoxId::User(from), from, random_id, Some(origin_key)).await {
            Err(crate::error::DomainError::Store(crate::error::StoreError::Conflict("deactivated"))) => Err(MessageError::InputUserDeactivated.into()),
            Err(crate::error::DomainError::Store(crate::error::StoreError::Conflict("blocked"))) => {
                // Which way: the rare path reads.
                let (by_sender, _) = self.store.blocking(from, to).await?;
                // Both ways: the sender's own block is what they can act on.
                Err(if by_sender { MessageError::YouBlockedUser } else { MessageError::UserIsBlocked }.into())
            }
            other => other,
        }
    }

    /// Writes a message into every listed member's box (basic groups, and service messages
    /// there). Replies are translated into each box. The sender's copy is `out`.
    async fn send_to_boxes(&self, from: UserId, members: &[UserId], msg: Message, random_id: Option<i64>, origin_key: Option<i64>) -> Result<Sent> {
        let mut reply_copies: Vec<(BoxId, i32)> = Vec::new();
        if let Some(r) = msg.reply_to {
            if let Some(target) = self.store.messages_by_ids(BoxId::User(from), &[r]).await?.into_iter().next().filter(|m| m.peer == msg.peer) {
                reply_copies = self.store.copies(&[target.logical_id]).await?;
            }
        }
        let mut ops = Vec::with_capacity(members.len() + 1);
        let mut recipients: Vec<UserId> = members.to_vec();
        if !recipients.contains(&from) {
            recipients.push(from);
        }
        // The sender's box first: its update is the answer.
        recipients.sort_by_key(|u| *u != from);
        for u in recipients {
            let mine = u == from;
            let reply_to = reply_copies.iter().find(|(b, _)| *b == BoxId::User(u)).map(|(_, id)| *id);
            let mentions = msg.mentions.contains(&u.0) && !mine;
            let copy = Message { out: mine, reply_to, mentions: if mentions { vec![u.0] } else { vec![] }, ..msg.clone() };
            ops.push((BoxId::User(u), BoxOp::Append(NewCopy { message: copy, random_id: if mine { random_id } else { None }, unread: !mine })));
        }
        match random_id {
            Some(rid) => self.apply_send(ops, BoxId::User(from), from, rid, origin_key).await,
            None => {
                let applied = self.store.apply(ops, None).await?;
                self.publish(&applied, origin_key.map(|k| (from, k)));
                let update = applied.of(BoxId::User(from)).cloned().ok_or_else(|| crate::error::StoreError::Backend("no sender copy".into()))?;
                Ok(Sent { update, owner: BoxId::User(from), duplicate: false })
            }
        }
    }

    /// One copy in the channel's box; the author's read mark moves past it.
    pub async fn send_to_channel(&self, g: &Group, msg: Message, random_id: Option<i64>, origin_key: i64) -> Result<Sent> {
        let from = msg.from;
        let owner = BoxId::Channel(g.id);
        let mut msg = msg;
        if msg.post && g.signatures {
            if let Some(m) = self.groups.member(g.id, from).await? {
                msg.post_author = m.rank.clone();
            }
        }
        let ops = vec![(owner, BoxOp::Append(NewCopy { message: msg, random_id, unread: false }))];
        let sent = match random_id {
            Some(rid) => self.apply_send(ops, owner, from, rid, Some(origin_key)).await?,
            None => {
                let applied = self.store.apply(ops, None).await?;
                self.publish(&applied, Some((from, origin_key)));
                let update = applied.of(owner).cloned().ok_or_else(|| crate::error::StoreError::Backend("no channel copy".into()))?;
                Sent { update, owner, duplicate: false }
            }
        };
        if !sent.duplicate {
            if let UpdateKind::NewMessage(m) = &sent.update.kind {
                self.raise_read(g, from, m.id, m.action.is_none()).await?;
                if g.slowmode_seconds > 0 {
                    self.groups.set_last_post(g.id, from, m.date).await?;
                }
            }
        }
        Ok(sent)
    }

    async fn apply_send(&self, ops: Vec<(BoxId, BoxOp)>, owner: BoxId, from: UserId, random_id: i64, origin_key: Option<i64>) -> Result<Sent> {
        let applied = self.store.apply(ops, Some((owner, from, random_id))).await?;
        if !applied.duplicate {
            self.publish(&applied, origin_key.map(|k| (from, k)));
        }
        let update = applied.of(owner).cloned().ok_or_else(|| crate::error::StoreError::Backend("no sender copy".into()))?;
        Ok(Sent { update, owner, duplicate: applied.duplicate })
    }

    async fn copy_in(&self, logical: i64, owner: BoxId) -> Result<Option<i32>> {
        Ok(self.store.copies(&[logical]).await?.into_iter().find(|(b, _)| *b == owner).map(|(_, id)| id))
    }

    /// A service message (group created, user added, title changed, …) from `actor` in a
    /// group: into every member's box for basic groups (`members`), into the channel box for
    /// channels. Returns the actor's (or the channel's) update.
    pub async fn post_service(
        &self,
        g: &Group,
        actor: UserId,
        action: Action,
        members: &[UserId],
        reply_to: Option<i32>,
        origin_key: Option<i64>,
    ) -> Result<Sent> {
        let mut msg = draft(actor, g.peer(), self.now(), String::new(), vec![]);
        msg.action = Some(action);
        msg.reply_to = reply_to;
        if g.kind.is_channel() {
            msg.post = g.kind == GroupKind::Broadcast;
            self.send_to_channel(g, msg, None, origin_key.unwrap_or(0)).await
        } else {
            self.send_to_boxes(actor, members, msg, None, origin_key).await
        }
    }

    /// A message from the service account (777000), such as a login code.
    pub async fn send_service_message(&self, to: UserId, text: String) -> Result<()> {
        let mut msg = draft(SERVICE_USER_ID, Peer::User(SERVICE_USER_ID), self.now(), text, vec![]);
        msg.out = false;
        let applied = self.store.apply(vec![(BoxId::User(to), BoxOp::Append(NewCopy { message: msg, random_id: None, unread: true }))], None).await?;
        self.publish(&applied, None);
        Ok(())
    }

    // ---- reading -----------------------------------------------------------------------

    /// The box a viewer reads `peer`'s messages in, after the access check.
    pub async fn box_for(&self, viewer: UserId, peer: Peer) -> Result<BoxId> {
        Ok(match peer {
            Peer::User(_) | Peer::Chat(_) => BoxId::User(viewer),
            Peer::Channel(g) => {
                self.readable_channel(g, viewer).await?;
                BoxId::Channel(g)
            }
        })
    }

    /// Telegram's getHistory: newest first; `offset_id`/`offset_date` are exclusive upper
    /// bounds, `add_offset` skips (negative: reaches back to newer messages), `max_id`/`min_id`
    /// are exclusive bounds, `limit` is capped at 100.
    pub async fn history(&self, viewer: UserId, peer: Peer, mut q: HistoryQuery) -> Result<(Vec<Message>, i32)> {
        q.limit = q.limit.clamp(0, HISTORY_LIMIT_MAX);
        q.add_offset = q.add_offset.max(-HISTORY_LIMIT_MAX);
        let owner = self.box_for(viewer, peer).await?;
        let (mut msgs, count) = self.store.history(owner, peer, q).await?;
        self.mark_pinned(owner, &mut msgs).await?;
        Ok((msgs, count))
    }

    pub async fn messages_by_ids(&self, owner: BoxId, ids: &[i32]) -> Result<Vec<Message>> {
        if ids.len() > IDS_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        let mut msgs = self.store.messages_by_ids(owner, ids).await?;
        self.mark_pinned(owner, &mut msgs).await?;
        Ok(msgs)
    }

    /// Flags a channel's pinned message among `msgs` (the pin lives with the channel).
    pub(crate) async fn mark_pinned(&self, owner: BoxId, msgs: &mut [Message]) -> Result<()> {
        if let (BoxId::Channel(g), false) = (owner, msgs.is_empty()) {
            if let Some(pinned) = self.groups.group(g).await?.and_then(|g| g.pinned_msg_id) {
                for m in msgs.iter_mut().filter(|m| m.id == pinned) {
                    m.pinned = true;
                }
            }
        }
        Ok(())
    }

    /// Dialogs of one folder with their top messages (from the user's box or each channel's
    /// box): the pinned ones first on the first page, then newest first.
    pub async fn dialogs(&self, owner: UserId, mut q: DialogsQuery) -> Result<(Vec<Dialog>, Vec<Message>, i32)> {
        q.limit = q.limit.clamp(1, 100);
        let (dialogs, count) = self.store.dialogs(owner, q).await?;
        let messages = self.top_messages(owner, &dialogs).await?;
        Ok((dialogs, messages, count))
    }

    /// The top messages of `owner`'s `dialogs`: one read for the account box, one per channel.
    pub(crate) async fn top_messages(&self, owner: UserId, dialogs: &[Dialog]) -> Result<Vec<Message>> {
        let mut messages =
            self.store.messages_by_ids(BoxId::User(owner), &dialogs.iter().filter(|d| d.pts.is_none()).map(|d| d.top_message).collect::<Vec<_>>()).await?;
        for d in dialogs.iter().filter(|d| d.top_message > 0) {
            if let Peer::Channel(g) = d.peer {
                messages.extend(self.store.messages_by_ids(BoxId::Channel(g), &[d.top_message]).await?);
            }
        }
        Ok(messages)
    }

    pub async fn dialog(&self, owner: UserId, peer: Peer) -> Result<Option<Dialog>> {
        Ok(self.store.dialog(owner, peer).await?)
    }

    /// `messages.getPeerDialogs`: the dialogs `owner` has with these peers (those it has),
    /// with their top messages. At most [`IDS_MAX`] peers.
    pub async fn peer_dialogs(&self, owner: UserId, peers: &[Peer]) -> Result<(Vec<Dialog>, Vec<Message>)> {
        if peers.len() > IDS_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        let mut dialogs = Vec::new();
        for p in peers {
            let d = match self.store.dialog(owner, *p).await? {
                Some(d) => Some(d),
                // A private chat with no message yet is still a dialog (TDLib opens the self
                // chat, Telethon reads drafts, this way): an empty one.
                None => match p {
                    Peer::User(_) => Some(Dialog::empty(*p)),
                    _ => None,
                },
            };
            if let Some(d) = d.filter(|d| !dialogs.iter().any(|x: &Dialog| x.peer == d.peer)) {
                dialogs.push(d);
            }
        }
        let messages = self.top_messages(owner, &dialogs).await?;
        Ok((dialogs, messages))
    }

    /// Marks messages up to `max_id` read in a private chat or basic group, and tells the
    /// sender of the newest one read (their outbox mark). Returns the reader's update.
    pub async fn read_history(&self, owner: UserId, origin_key: i64, peer: Peer, max_id: i32) -> Result<Option<PtsUpdate>> {
        let mut ops = vec![(BoxId::User(owner), BoxOp::ReadInbox { peer, max_id })];
        let bound = if max_id > 0 { max_id } else { i32::MAX };
        if let Some(newest) = self.store.newest_incoming(owner, peer, bound).await? {
            let sender = newest.from;
            if sender != owner && sender != SERVICE_USER_ID {
                if let Some(out_id) = self.copy_in(newest.logical_id, BoxId::User(sender)).await? {
                    let their_peer = if let Peer::User(_) = peer { Peer::User(owner) } else { peer };
                    ops.push((BoxId::User(sender), BoxOp::ReadOutbox { peer: their_peer, max_id: out_id }));
                }
            }
        }
        let applied = self.store.apply(ops, None).await?;
        // Without an inbox change, an outbox update would be a repeat: drop it.
        if applied.of(BoxId::User(owner)).is_none() {
            return Ok(None);
        }
        self.publish(&applied, Some((owner, origin_key)));
        Ok(applied.of(BoxId::User(owner)).cloned())
    }

    /// `channels.readHistory`: raises the member's read mark and tells their other sessions.
    pub async fn read_channel(&self, owner: UserId, g: GroupId, max_id: i32) -> Result<()> {
        let (group, m) = self.readable_channel(g, owner).await?;
        if !m.is_some_and(|m| m.role.is_member()) {
            return Ok(());
        }
        let top = self.store.dialog(owner, Peer::Channel(g)).await?.map(|d| d.top_message).unwrap_or(0);
        let max = if max_id <= 0 || max_id > top { top } else { max_id };
        if let Some(new_max) = self.raise_read(&group, owner, max, true).await? {
            let d = self.store.dialog(owner, Peer::Channel(g)).await?;
            let still_unread = d.as_ref().map(|d| d.unread_count).unwrap_or(0);
            let pts = d.and_then(|d| d.pts).unwrap_or(0);
            self.bus.publish(Event::ReadChannel { user: owner, channel: g, max_id: new_max, still_unread, pts });
        }
        Ok(())
    }

    /// Raises `reader`'s read mark in channel `g`. When it is a `reading` (a read, or an
    /// ordinary message the reader sent; not a join or another service message) in a
    /// supergroup, it also counts towards read receipts: each sender whose messages someone
    /// else has now read gets `updateReadChannelOutbox`. Returns the new mark when it moved.
    async fn raise_read(&self, g: &Group, reader: UserId, max: i32, reading: bool) -> Result<Option<i32>> {
        let receipts = reading && g.kind == GroupKind::Megagroup;
        let Some(moved) = self.groups.set_read(g.id, reader, max, receipts).await? else { return Ok(None) };
        let ReadMove { max_id, before, after } = moved;
        if !receipts || after == before {
            return Ok(Some(max_id));
        }
        // Only the latest ids are looked at: a receipt for a message further back is not
        // worth a long scan (the dialog's outbox mark is right regardless).
        let channel = BoxId::Channel(g.id);
        // Everyone but the previous top reader: their mark is the top, and it rose.
        if after.top > before.top {
            let from = before.top.max(after.top - RECEIPT_SCAN_IDS);
            for sender in self.store.senders_between(channel, from, after.top, RECEIPT_SENDERS_MAX).await? {
                if sender != reader && sender != before.user {
                    self.bus.publish(Event::ReadChannelOutbox { user: sender, channel: g.id, max_id: after.visible_to(sender) });
                }
            }
        }
        // The previous top reader: their mark was the second one.
        let (top, was, now) = (before.user, before.visible_to(before.user), after.visible_to(before.user));
        if top != reader && top != UserId(0) && now > was {
            let from = was.max(now - RECEIPT_SCAN_IDS);
            if self.store.senders_between(channel, from, now, RECEIPT_SENDERS_MAX).await?.contains(&top) {
                self.bus.publish(Event::ReadChannelOutbox { user: top, channel: g.id, max_id: now });
            }
        }
        Ok(Some(max_id))
    }

    /// Edits a message: the author's (or, in channels, an admin's with the right), in every
    /// box that holds a copy.
    pub async fn edit(&self, owner: UserId, origin_key: i64, peer: Peer, id: i32, text: String, entities: Vec<Entity>) -> Result<(BoxId, PtsUpdate)> {
        self.edit_with_media(owner, origin_key, peer, id, Some((text, entities)), None).await
    }

    /// [`Self::edit`] that may also replace a media message's file (`messages.editMessage` with
    /// `media`), and may leave the text (a caption, for media) as it is (`text` None). Media
    /// cannot be added to a text message (`MEDIA_PREV_INVALID`).
    pub async fn edit_with_media(
        &self,
        owner: UserId,
        origin_key: i64,
        peer: Peer,
        id: i32,
        text: Option<(String, Vec<Entity>)>,
        media: Option<Media>,
    ) -> Result<(BoxId, PtsUpdate)> {
        let owner_box = self.box_for(owner, peer).await?;
        let Some(m) = self.store.messages_by_ids(owner_box, &[id]).await?.into_iter().next() else { return Err(MessageError::MessageIdInvalid.into()) };
        if m.action.is_some() {
            return Err(MessageError::MessageIdInvalid.into());
        }
        if media.is_some() && m.media.is_none() {
            return Err(crate::error::FileError::MediaPrevInvalid.into());
        }
        let Some((text, entities)) = text.or_else(|| media.is_some().then(|| (m.text.clone(), m.entities.clone()))) else {
            return Err(MessageError::MessageNotModified.into());
        };
        if m.media.is_some() {
            validate_caption(&text, &entities)?;
        } else {
            validate_text(&text, &entities)?;
        }
        let allowed = match owner_box {
            BoxId::User(_) => m.out || m.peer == Peer::User(owner),
            BoxId::Channel(g) => {
                let (group, member) = self.group_and_member(g, owner).await?;
                let rights = member.filter(|m| m.role.is_member()).map(|m| (m.role, m.admin_rights));
                match rights {
                    Some((Role::Creator, _)) => true,
                    Some((_, r)) if group.kind == GroupKind::Broadcast => {
                        r.has(AdminRights::EDIT_MESSAGES) || (m.from == owner && r.has(AdminRights::POST_MESSAGES))
                    }
                    Some(_) => m.from == owner,
                    None => false,
                }
            }
        };
        if !allowed {
            return Err(MessageError::MessageAuthorRequired.into());
        }
        // Group messages get the `@username` entities a send would have added.
        let mut entities = entities;
        if matches!(m.peer, Peer::Chat(_) | Peer::Channel(_)) {
            add_username_entities(&text, &mut entities);
        }
        let same_media = media.as_ref().is_none_or(|x| m.media.as_deref() == Some(x));
        if m.text == text && m.entities == entities && same_media {
            return Err(MessageError::MessageNotModified.into());
        }
        self.spend(owner, &text, &entities)?;
        let date = self.now();
        let media = media.filter(|_| !same_media).map(Box::new);
        let op = |id| BoxOp::Edit { id, text: text.clone(), entities: entities.clone(), media: media.clone(), date };
        let ops = match owner_box {
            BoxId::User(_) => self.store.copies(&[m.logical_id]).await?.into_iter().map(|(b, cid)| (b, op(cid))).collect(),
            BoxId::Channel(_) => vec![(owner_box, op(id))],
        };
        let applied = self.apply(ops, Some((owner, origin_key))).await?;
        applied.updates.into_iter().find(|(b, _)| *b == owner_box).ok_or_else(|| MessageError::MessageIdInvalid.into())
    }

    /// Deletes messages from the owner's box; with `revoke`, their copies in the other boxes
    /// too (private chats: either side may revoke; basic groups: one's own messages, or any as
    /// an admin). Returns the owner's update, or None when nothing was deleted.
    pub async fn delete(&self, owner: UserId, origin_key: i64, ids: &[i32], revoke: bool) -> Result<Option<PtsUpdate>> {
        if ids.len() > IDS_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        let me = BoxId::User(owner);
        let doomed = self.store.messages_by_ids(me, ids).await?;
        let mut ops: Vec<(BoxId, BoxOp)> = vec![(me, BoxOp::Delete { ids: doomed.iter().map(|m| m.id).collect() })];
        if revoke {
            let mut admin_of: Vec<(GroupId, bool)> = Vec::new();
            let mut logical = Vec::new();
            for m in &doomed {
                let may = match m.peer {
                    Peer::User(_) => true,
                    Peer::Chat(g) => {
                        if m.out {
                            true
                        } else {
                            match admin_of.iter().find(|(x, _)| *x == g) {
                                Some((_, a)) => *a,
                                None => {
                                    let a = self.groups.member(g, owner).await?.is_some_and(|m| m.role.is_admin());
                                    admin_of.push((g, a));
                                    a
                                }
                            }
                        }
                    }
                    Peer::Channel(_) => false,
                };
                if may {
                    logical.push(m.logical_id);
                }
            }
            let mut per_box: Vec<(BoxId, Vec<i32>)> = Vec::new();
            for (b, id) in self.store.copies(&logical).await? {
                if b == me {
                    continue;
                }
                match per_box.iter_mut().find(|(x, _)| *x == b) {
                    Some((_, v)) => v.push(id),
                    None => per_box.push((b, vec![id])),
                }
            }
            ops.extend(per_box.into_iter().map(|(b, ids)| (b, BoxOp::Delete { ids })));
        }
        let applied = self.apply(ops, Some((owner, origin_key))).await?;
        Ok(applied.of(me).cloned())
    }

    /// `channels.deleteMessages`: one's own messages, or any with the delete right.
    pub async fn delete_channel_messages(&self, owner: UserId, origin_key: i64, g: GroupId, ids: &[i32]) -> Result<Option<PtsUpdate>> {
        if ids.len() > IDS_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        let (group, member) = self.readable_channel(g, owner).await?;
        let member = member.filter(|m| m.role.is_member());
        let may_any = member.as_ref().is_some_and(|m| m.role == Role::Creator || m.admin_rights.has(AdminRights::DELETE_MESSAGES));
        let found = self.store.messages_by_ids(BoxId::Channel(g), ids).await?;
        let mut doomed = Vec::new();
        for m in &found {
            let admin = member.as_ref().is_some_and(|x| x.role.is_admin());
            let own = m.from == owner && member.is_some() && (group.kind != GroupKind::Broadcast || admin);
            if !(may_any || own) {
                return Err(GroupError::MessageDeleteForbidden.into());
            }
            doomed.push(m.id);
        }
        let applied = self.apply(vec![(BoxId::Channel(g), BoxOp::Delete { ids: doomed })], Some((owner, origin_key))).await?;
        Ok(applied.of(BoxId::Channel(g)).cloned())
    }

    /// Deletes a dialog in chunks of [`DELETE_CHUNK`]; returns the owner's combined update
    /// (pts after the last chunk, pts_count summed), None when nothing was deleted.
    pub async fn delete_history(&self, owner: UserId, origin_key: i64, peer: Peer, max_id: i32, revoke: bool, just_clear: bool) -> Result<Option<PtsUpdate>> {
        let mut combined: Option<PtsUpdate> = None;
        loop {
            let ids = self.store.ids_before(BoxId::User(owner), peer, max_id, DELETE_CHUNK + 1).await?;
            let more = ids.len() > DELETE_CHUNK;
            let chunk = &ids[..ids.len().min(DELETE_CHUNK)];
            if let Some(up) = self.delete(owner, origin_key, chunk, revoke && matches!(peer, Peer::User(_))).await? {
                combined = Some(match combined {
                    Some(c) => PtsUpdate { pts: up.pts, pts_count: c.pts_count + up.pts_count, kind: up.kind },
                    None => up,
                });
            }
            if !more {
                if !just_clear {
                    self.store.drop_empty_dialog(owner, peer).await?;
                }
                return Ok(combined);
            }
        }
    }

    /// Typing in a private chat or a basic group (to each other member).
    pub async fn set_typing(&self, from: UserId, peer: Peer, action: TypingAction) -> Result<()> {
        match peer {
            Peer::User(to) if to != from => self.bus.publish(Event::Typing { user: to, from, group: None, action }),
            Peer::Chat(g) if self.groups.member(g, from).await?.is_some_and(|m| m.role.is_member()) => {
                for u in self.groups.member_ids(g).await? {
                    if u != from {
                        self.bus.publish(Event::Typing { user: u, from, group: Some((g, false)), action: action.clone() });
                    }
                }
            }
            // Supergroups: one event on the channel's topic, at most one per member and
            // channel per the `typing` flood row, 3 s by default (clients repeat theirs every few seconds; more
            // would let one member push to every online member at will). Past it, dropped.
            Peer::Channel(g) => {
                // The bound first (it costs no read); a cancel has its own, so that the end
                // of typing is not lost to the start's.
                let cancel = action == TypingAction::Cancel;
                if self.typing.take((from, g, cancel), 1.0, self.clock.now_ms()).is_err() {
                    return Ok(());
                }
                let (group, m) = self.group_and_member(g, from).await?;
                // Typing is allowed whoever may post, slow mode or not.
                let may_post = match self.check_post(&group, m.as_ref(), self.now()) {
                    Ok(()) => true,
                    Err(crate::error::DomainError::Group(GroupError::SlowmodeWait(_))) => true,
                    Err(_) => false,
                };
                if group.kind == GroupKind::Megagroup && may_post {
                    self.bus.publish(Event::ChannelTyping { channel: g, from, action });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `messages.markDialogUnread`: sets or clears the hand-made unread mark of a dialog
    /// `owner` has, and tells their sessions when it changed.
    pub async fn mark_dialog_unread(&self, owner: UserId, peer: Peer, unread: bool) -> Result<()> {
        if self.store.dialog(owner, peer).await?.is_none() {
            return Err(MessageError::PeerIdInvalid.into());
        }
        if self.store.set_unread_mark(owner, peer, unread).await? {
            self.bus.publish(Event::DialogUnreadMark { user: owner, peer, unread });
        }
        Ok(())
    }

    /// The peers of `owner`'s dialogs marked unread (`messages.getDialogUnreadMarks`).
    pub async fn unread_marks(&self, owner: UserId) -> Result<Vec<Peer>> {
        Ok(self.store.unread_marks(owner).await?)
    }

    // ---- blocking ----------------------------------------------------------------------

    /// `contacts.block` / `unblock`: whether `user` accepts private messages from `target`.
    /// A change is told to `user`'s sessions (`updatePeerBlocked`); each one that changes
    /// something spends one send from `user`'s budget.
    pub async fn set_blocked(&self, user: UserId, target: UserId, blocked: bool) -> Result<()> {
        if target == user || target == SERVICE_USER_ID {
            return Err(MessageError::ContactIdInvalid.into());
        }
        if self.store.blocking(user, target).await?.0 == blocked {
            return Ok(());
        }
        self.sends.take(user, 1.0, self.clock.now_ms()).map_err(MessageError::FloodWait)?;
        if self.store.set_blocked(user, target, blocked, self.now()).await? {
            self.bus.publish(Event::PeerBlocked { user, peer: target, blocked });
        }
        Ok(())
    }

    /// Whether `user` has blocked `target`.
    pub async fn is_blocked(&self, user: UserId, target: UserId) -> Result<bool> {
        Ok(self.store.blocking(user, target).await?.0)
    }

    /// `contacts.getBlocked`: whom `user` blocked, newest first, with the total.
    pub async fn blocked(&self, user: UserId, offset: i32, limit: i32) -> Result<(Vec<(UserId, i32)>, i32)> {
        Ok(self.store.blocked(user, offset.max(0), limit.clamp(1, BLOCKED_PAGE_MAX)).await?)
    }

    /// The channels of `owner`'s with posts dated `since` or later (at most `limit`).
    pub async fn channels_posted_since(&self, owner: UserId, since: i32, limit: usize) -> Result<Vec<GroupId>> {
        Ok(self.store.channels_posted_since(owner, since, limit).await?)
    }

    pub async fn state(&self, owner: UserId) -> Result<BoxState> {
        Ok(self.store.state(owner).await?)
    }

    pub async fn pts(&self, owner: BoxId) -> Result<i32> {
        Ok(self.store.pts(owner).await?)
    }

    pub async fn difference(&self, owner: UserId, pts: i32) -> Result<Difference> {
        Ok(self.store.difference(BoxId::User(owner), pts, DIFFERENCE_LIMIT).await?)
    }

    /// Trims every box's pts log to its latest [`LOG_KEEP_PTS`] (a client further behind gets
    /// `differenceTooLong` and reloads its state). Returns how many log entries went.
    pub async fn trim_log(&self) -> Result<usize> {
        Ok(self.store.trim_log(LOG_KEEP_PTS, 1000).await?)
    }

    /// `updates.getChannelDifference` for a reader of the channel, `limit` capped.
    pub async fn channel_difference(&self, viewer: UserId, g: GroupId, pts: i32, limit: usize) -> Result<Difference> {
        self.readable_channel(g, viewer).await?;
        Ok(self.store.difference(BoxId::Channel(g), pts, limit.clamp(1, CHANNEL_DIFFERENCE_MAX)).await?)
    }

    /// View counters of broadcast posts, counting this viewer once per post when asked and
    /// while the viewer's counted-views budget lasts (past it, the counters are only read).
    pub async fn views(&self, viewer: UserId, g: GroupId, ids: &[i32], increment: bool) -> Result<Vec<i32>> {
        if ids.len() > IDS_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        self.readable_channel(g, viewer).await?;
        let count = increment && self.counted_views.take(viewer, ids.len() as f64, self.clock.now_ms()).is_ok();
        Ok(self.store.views(g, ids, count.then_some(viewer)).await?)
    }
}

/// Read receipts in supergroups: how many of the latest ids a read looks back over for
/// their senders, and how many senders it tells at most.
const RECEIPT_SCAN_IDS: i32 = 10_000;
const RECEIPT_SENDERS_MAX: usize = 1000;

/// How much pts log each box keeps: a client this far behind reloads instead of replaying.
pub const LOG_KEEP_PTS: i32 = 200_000;

/// The most updates one `getChannelDifference` answer carries (Telethon asks for 100).
pub const CHANNEL_DIFFERENCE_MAX: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DomainError;

    fn e(offset: i32, length: i32, kind: EntityKind) -> Entity {
        Entity { offset, length, kind }
    }

    #[test]
    fn username_mentions_are_found_with_utf16_offsets() {
        let text = "héllo 👋 @Bob_the_Builder, hi @al (short) @carol5 @bob_the_builder mail@example.com @@x_y_z_w";
        let (found, names) = username_mentions(text, &[]);
        assert_eq!(found, vec![e(9, 16, EntityKind::Mention), e(42, 7, EntityKind::Mention), e(50, 16, EntityKind::Mention)]);
        assert_eq!(names, vec!["bob_the_builder".to_string(), "carol5".to_string()]);
        // A span the client already marked (code, its own mention) is left alone.
        let (found, names) = username_mentions(text, &[e(42, 7, EntityKind::Code)]);
        assert_eq!(found.len(), 2);
        assert_eq!(names, vec!["bob_the_builder".to_string()]);
        // Formatting around a mention does not hide it; the client's own mention entity
        // names its user without a second entity.
        let (found, names) = username_mentions("hey @bob_b and @carol", &[e(0, 9, EntityKind::Bold), e(15, 6, EntityKind::Mention)]);
        assert_eq!(found, vec![e(4, 6, EntityKind::Mention)]);
        assert_eq!(names, vec!["carol".to_string(), "bob_b".to_string()]);
        // Invalid usernames: a digit first, a trailing underscore, a double underscore.
        assert_eq!(username_mentions("@1abcde @abcde_ @ab__cde", &[]), (vec![], vec![]));
        // At most USERNAME_MENTIONS_MAX distinct names are looked up.
        let many: String = (0..30).map(|i| format!("@user{i:03} ")).collect();
        assert_eq!(username_mentions(&many, &[]).1.len(), USERNAME_MENTIONS_MAX);
    }

    #[test]
    fn text_and_entity_bounds() {
        assert!(validate_text("hello", &[e(0, 5, EntityKind::Bold)]).is_ok());
        // UTF-16 units: one emoji is two
        assert!(validate_text("a😀", &[e(1, 2, EntityKind::Italic)]).is_ok());
        let bounds = DomainError::Message(MessageError::EntityBoundsInvalid);
        for bad in [e(0, 6, EntityKind::Bold), e(-1, 2, EntityKind::Bold), e(2, 0, EntityKind::Bold), e(i32::MAX, i32::MAX, EntityKind::Bold)] {
            assert_eq!(validate_text("hello", &[bad]).unwrap_err(), bounds);
        }
        let long_url = EntityKind::TextUrl { url: "x".repeat(ENTITY_URL_MAX + 1) };
        assert_eq!(validate_text("hello", &[e(0, 1, long_url)]).unwrap_err(), bounds);
        let heavy: Vec<Entity> = (0..5).map(|_| e(0, 1, EntityKind::TextUrl { url: "x".repeat(ENTITY_URL_MAX) })).collect();
        assert_eq!(validate_text("hello", &heavy).unwrap_err(), bounds, "more than ENTITY_STRINGS_MAX of URLs in all");
        let many: Vec<Entity> = (0..ENTITIES_MAX as i32 + 1).map(|_| e(0, 1, EntityKind::Bold)).collect();
        assert_eq!(validate_text("hello", &many).unwrap_err(), bounds);
        assert_eq!(validate_text("  ", &[]).unwrap_err(), DomainError::Message(MessageError::MessageEmpty));
        assert_eq!(validate_text(&"я".repeat(4097), &[]).unwrap_err(), DomainError::Message(MessageError::MessageTooLong));
    }
}
