//! Bus events → the `Updates` object pushed to a session (a top-level message, never inside
//! rpc_result; client-compat.md §4.3).

use crate::{convert, Services};
use grammers_tl_types::{enums, types, Serializable};
use herald_domain::bus::{Event, GroupChange};
use herald_domain::model::{BoxId, Group, GroupId, Peer, PtsUpdate, Reactions, UpdateKind, User, UserId};
use std::sync::Arc;

/// What a session should do with an event.
pub enum Push {
    /// Send these bytes (a serialized `Updates`, gzip-packed where that pays).
    Send(Vec<u8>),
    /// Nothing for this session.
    Skip,
    /// The session's key was logged out: stop delivering the user's events.
    Unbound,
}

/// A membership change the session must follow: (channel, joined).
pub fn membership(event: &Event) -> Option<(GroupId, bool)> {
    match event {
        Event::Group { group, channel: true, change: GroupChange::Joined, .. } => Some((*group, true)),
        Event::Group { group, channel: true, change: GroupChange::Left, .. } => Some((*group, false)),
        _ => None,
    }
}

/// The users and groups a channel event names, loaded once per event for all receivers,
/// and the push rendered once for every receiver that the event does not name.
struct Loaded {
    users: Vec<User>,
    groups: Vec<Group>,
    template: Option<Template>,
}

/// A channel push as rendered for a receiver the event does not name. For every such
/// receiver the bytes are the same but for the access hashes of the users and channels in
/// it, which are keyed per viewer: the template is rendered for viewer 0 and each hash
/// (a keyed 64-bit value, unpredictable without the server's secret) is found in the bytes
/// and replaced by the receiver's own. Rendering and serializing once instead of once per
/// member is what makes a post to 10 000 members cheap (README, Benchmarks).
struct Template {
    bytes: Vec<u8>,
    /// Where each hash sits: (offset, whose hash it is).
    holes: Vec<(usize, Hashed)>,
    /// The users the event names (sender, mentioned, acted on): they see the post
    /// differently (`out`, `mentioned`, `self`) and get it rendered for them alone.
    named: Vec<UserId>,
    /// Whether gzip made the template smaller: receivers' copies differ only in the hashes.
    gzip: bool,
    /// The `date` it carries.
    date: i32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hashed {
    User(UserId),
    Channel(GroupId),
    /// A file a post carries (its access hash is keyed per viewer too).
    File(i64),
}

impl Hashed {
    /// The access hash `viewer` is given for this user or channel.
    fn for_viewer(self, s: &Services, viewer: UserId) -> i64 {
        match self {
            Hashed::User(u) => s.accounts.access_hash(viewer, u),
            Hashed::Channel(g) => s.accounts.channel_access_hash(viewer, g),
            Hashed::File(id) => s.files.access_hash(viewer, id),
        }
    }
}

type HashSlots = [Option<(UserId, Hashed, i64)>; 8];

/// The access hashes one connection's receiver was last given, so that a stream of posts
/// in the same channel (from the same few posters) does not recompute them: each is a
/// keyed SHA-256, which was a sixth of a channel push's cost. Eight entries, replaced in
/// turn; about 300 bytes, allocated at the first channel push (an idle connection holds a
/// pointer).
#[derive(Default)]
pub struct HashCache {
    slots: Option<Box<HashSlots>>,
    next: usize,
}

impl HashCache {
    fn get(&mut self, s: &Services, viewer: UserId, whose: Hashed) -> i64 {
        let slots = self.slots.get_or_insert_with(Default::default);
        if let Some((_, _, hash)) = slots.iter().flatten().find(|(v, w, _)| *v == viewer && *w == whose) {
            return *hash;
        }
        let hash = whose.for_viewer(s, viewer);
        slots[self.next] = Some((viewer, whose, hash));
        self.next = (self.next + 1) % slots.len();
        hash
    }
}

/// The rendering viewer of templates: no account has id 0.
const TEMPLATE_VIEWER: UserId = UserId(0);

impl Template {
    fn build(s: &Services, channel: GroupId, ups: &[PtsUpdate], named: &[UserId], users: &[User], groups: &[Group], now: i32) -> Option<Self> {
        let mut named = named.to_vec();
        for u in ups {
            if let UpdateKind::NewMessage(m) | UpdateKind::EditMessage(m) = &u.kind {
                named.extend(m.mentions.iter().map(|m| UserId(*m)));
            }
        }
        named.sort();
        named.dedup();
        let bytes = render_channel(s, TEMPLATE_VIEWER, channel, ups, users, groups, now);
        let files = ups.iter().filter_map(|u| match &u.kind {
            UpdateKind::NewMessage(m) | UpdateKind::EditMessage(m) => {
                m.media.as_deref().map(|media| media.file()).or_else(|| m.action.as_ref().and_then(|a| a.file())).map(|f| Hashed::File(f.id))
            }
            _ => None,
        });
        let whose_all =
            users.iter().map(|u| Hashed::User(u.id)).chain(groups.iter().flat_map(|g| [Some(g.id), g.migrated_to]).flatten().map(Hashed::Channel)).chain(files);
        let mut holes = Vec::new();
        for whose in whose_all {
            let needle = whose.for_viewer(s, TEMPLATE_VIEWER).to_le_bytes();
            holes.extend(bytes.windows(8).enumerate().filter(|(_, w)| *w == needle).map(|(at, _)| (at, whose)));
        }
        holes.sort_by_key(|h| h.0);
        holes.dedup_by_key(|h| h.0);
        // Overlapping matches would mean a hash is not where a field is: render per viewer.
        if holes.windows(2).any(|w| w[1].0 < w[0].0 + 8) {
            return None;
        }
        let gzip = herald_mtproto::wire::gzip_if_smaller(bytes.clone()).len() < bytes.len();
        Some(Self { bytes, holes, named, gzip, date: now })
    }

    /// The push for `viewer` (not yet gzipped), or None when the event names them.
    fn for_viewer(&self, s: &Services, viewer: UserId, cache: &mut HashCache) -> Option<Vec<u8>> {
        if self.named.binary_search(&viewer).is_ok() {
            return None;
        }
        let mut bytes = self.bytes.clone();
        for (at, whose) in &self.holes {
            let hash = cache.get(s, viewer, *whose);
            bytes[*at..*at + 8].copy_from_slice(&hash.to_le_bytes());
        }
        Some(bytes)
    }
}

/// A channel event's `Updates` as `viewer` sees it, with the channel shown as to a plain
/// member (rights come with getChannels).
fn render_channel(s: &Services, viewer: UserId, channel: GroupId, ups: &[PtsUpdate], users: &[User], groups: &[Group], now: i32) -> Vec<u8> {
    let tl = ups.iter().map(|u| convert::update(&s.files, viewer, BoxId::Channel(channel), u).0).collect();
    let users = users.iter().map(|u| convert::user(s, viewer, u)).collect();
    let member = herald_domain::model::Member::new(channel, viewer, herald_domain::model::Role::Member, viewer, 0);
    let chats = groups.iter().map(|g| convert::chat(s, viewer, g, Some(&member))).collect();
    updates(tl, users, chats, now)
}

/// `updateShort(updateLoginToken)`, for the connections of a key whose QR login token was
/// accepted.
pub fn login_token(date: i32) -> Vec<u8> {
    enums::Updates::UpdateShort(types::UpdateShort { update: enums::Update::LoginToken, date }).to_bytes()
}

/// A push of one update without pts (`updateShort`).
fn short(update: enums::Update, date: i32) -> Push {
    Push::Send(gzip(enums::Updates::UpdateShort(types::UpdateShort { update, date }).to_bytes()))
}

fn gzip(bytes: Vec<u8>) -> Vec<u8> {
    herald_mtproto::wire::gzip_if_smaller(bytes)
}

fn updates(updates: Vec<enums::Update>, users: Vec<enums::User>, chats: Vec<enums::Chat>, date: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    enums::Updates::Updates(types::Updates { updates, users, chats, date, seq: 0 }).serialize(&mut out);
    out
}

/// `updateMessageReactions` with the reactors it names.
async fn reactions_push(s: &Services, viewer: UserId, p: Peer, msg_id: i32, r: &Reactions, list: bool, now: i32) -> Push {
    let update = enums::Update::MessageReactions(types::UpdateMessageReactions {
        peer: convert::peer(p),
        msg_id,
        top_msg_id: None,
        saved_peer_id: None,
        reactions: convert::reactions(viewer, r, list),
    });
    let ids = if list { r.recent.iter().map(|(u, _, _)| UserId(*u)).collect() } else { vec![] };
    let loaded = async { Ok::<_, crate::RpcError>((convert::users(s, viewer, ids).await?, convert::chats(s, viewer, p.group()).await?)) };
    match loaded.await {
        Ok((users, chats)) => Push::Send(gzip(updates(vec![update], users, chats, now))),
        Err(_) => Push::Skip,
    }
}

/// `event` as a push for `viewer` on the connection of `auth_key_id`; `hashes` is that
/// connection's cache of access hashes.
pub async fn encode(s: &Services, viewer: UserId, auth_key_id: i64, event: &Event, hashes: &mut HashCache) -> Push {
    let now = s.clock.now_secs() as i32;
    match event {
        Event::Updates { origin, updates: ups, .. } => {
            if *origin == Some(auth_key_id) {
                return Push::Skip;
            }
            let mut tl = Vec::with_capacity(ups.len());
            let (mut ids, mut groups) = (vec![viewer], vec![]);
            for u in ups {
                let (up, users, gs) = convert::update(&s.files, viewer, BoxId::User(viewer), u);
                tl.push(up);
                ids.extend(users);
                groups.extend(gs);
            }
            let loaded = async { Ok::<_, crate::RpcError>((convert::users(s, viewer, ids).await?, convert::chats(s, viewer, groups).await?)) };
            match loaded.await {
                Ok((users, chats)) => Push::Send(gzip(updates(tl, users, chats, now))),
                Err(e) => {
                    tracing::warn!(error = %e.message, "could not load users for a push; the client will catch up");
                    Push::Skip
                }
            }
        }
        Event::Channel { channel, origin, updates: ups, rendered } => {
            if *origin == Some((viewer, auth_key_id)) {
                return Push::Skip;
            }
            // One store read and one rendering per event, whatever the number of receivers.
            let loaded = rendered
                .0
                .get_or_try_init(|| async {
                    let (mut ids, mut gids) = (vec![], vec![*channel]);
                    for u in ups {
                        let (_, users, gs) = convert::update(&s.files, viewer, BoxId::Channel(*channel), u);
                        ids.extend(users);
                        gids.extend(gs);
                    }
                    ids.sort();
                    ids.dedup();
                    gids.sort();
                    gids.dedup();
                    let users = s.accounts.users(&ids).await?;
                    let groups: Vec<Group> = s.groups.known(viewer, &gids).await?.into_iter().map(|(g, _)| g).collect();
                    let template = Template::build(s, *channel, ups, &ids, &users, &groups, now);
                    Ok::<_, herald_domain::DomainError>(Arc::new(Loaded { users, groups, template }) as Arc<dyn std::any::Any + Send + Sync>)
                })
                .await;
            let Some(loaded) = loaded.ok().and_then(|l| l.clone().downcast::<Loaded>().ok()) else {
                tracing::warn!("could not load a channel push's entities; members will catch up");
                return Push::Skip;
            };
            if let Some(t) = &loaded.template {
                if let Some(bytes) = t.for_viewer(s, viewer, hashes) {
                    // Debug builds (every test run) check each patched copy against the
                    // push rendered for its receiver alone.
                    debug_assert!(
                        bytes == render_channel(s, viewer, *channel, ups, &loaded.users, &loaded.groups, t.date),
                        "a channel push template differs from its receiver's rendering"
                    );
                    return Push::Send(if t.gzip { gzip(bytes) } else { bytes });
                }
            }
            Push::Send(gzip(render_channel(s, viewer, *channel, ups, &loaded.users, &loaded.groups, now)))
        }
        Event::Group { group, channel, .. } => {
            let update = if *channel {
                enums::Update::Channel(types::UpdateChannel { channel_id: group.0 })
            } else {
                enums::Update::Chat(types::UpdateChat { chat_id: group.0 })
            };
            let chats = convert::chats(s, viewer, [*group]).await.unwrap_or_default();
            Push::Send(gzip(updates(vec![update], vec![], chats, now)))
        }
        Event::ReadChannel { channel, max_id, still_unread, pts, .. } => {
            let update = enums::Update::ReadChannelInbox(types::UpdateReadChannelInbox {
                folder_id: None,
                channel_id: channel.0,
                max_id: *max_id,
                still_unread_count: *still_unread,
                pts: *pts,
            });
            short(update, now)
        }
        Event::ReadChannelOutbox { channel, max_id, .. } => {
            let update = enums::Update::ReadChannelOutbox(types::UpdateReadChannelOutbox { channel_id: channel.0, max_id: *max_id });
            short(update, now)
        }
        Event::DialogUnreadMark { peer, unread, .. } => short(
            enums::Update::DialogUnreadMark(types::UpdateDialogUnreadMark {
                unread: *unread,
                peer: enums::DialogPeer::Peer(types::DialogPeer { peer: convert::peer(*peer) }),
                saved_peer_id: None,
            }),
            now,
        ),
        Event::Reactions { peer, msg_id, reactions, .. } => reactions_push(s, viewer, *peer, *msg_id, reactions, true, now).await,
        Event::ChannelReactions { channel, msg_id, reactions, broadcast } => {
            reactions_push(s, viewer, Peer::Channel(*channel), *msg_id, reactions, !broadcast, now).await
        }
        Event::Draft { origin, .. } | Event::DialogPinned { origin, .. } | Event::PinnedDialogs { origin, .. } | Event::FolderPeers { origin, .. }
            if *origin == auth_key_id =>
        {
            Push::Skip
        }
        Event::Draft { peer, draft, .. } => {
            let draft = match draft {
                Some(d) => convert::draft(d),
                None => enums::DraftMessage::Empty(types::DraftMessageEmpty { date: Some(now) }),
            };
            let update = enums::Update::DraftMessage(types::UpdateDraftMessage { peer: convert::peer(*peer), top_msg_id: None, saved_peer_id: None, draft });
            short(update, now)
        }
        Event::DialogPinned { peer, pinned, folder, .. } => {
            let update = enums::Update::DialogPinned(types::UpdateDialogPinned {
                pinned: *pinned,
                folder_id: (*folder != 0).then_some(*folder),
                peer: convert::dialog_peer(*peer),
            });
            short(update, now)
        }
        Event::PinnedDialogs { folder, order, .. } => {
            let update = enums::Update::PinnedDialogs(types::UpdatePinnedDialogs {
                folder_id: (*folder != 0).then_some(*folder),
                order: Some(order.iter().map(|p| convert::dialog_peer(*p)).collect()),
            });
            short(update, now)
        }
        Event::FolderPeers { peers, .. } => {
            // No pts of its own here: sent at the box's current pts with count 0, which
            // clients apply without looking for a gap.
            let Ok(pts) = s.messages.pts(BoxId::User(viewer)).await else { return Push::Skip };
            let update = enums::Update::FolderPeers(types::UpdateFolderPeers {
                folder_peers: peers.iter().map(|(p, f)| enums::FolderPeer::Peer(types::FolderPeer { peer: convert::peer(*p), folder_id: *f })).collect(),
                pts,
                pts_count: 0,
            });
            short(update, now)
        }
        Event::ScheduledGone { peer, ids, sent, .. } => short(
            enums::Update::DeleteScheduledMessages(types::UpdateDeleteScheduledMessages {
                peer: convert::peer(*peer),
                messages: ids.clone(),
                sent_messages: (!sent.is_empty()).then(|| sent.clone()),
            }),
            now,
        ),
        Event::UserStatus { of, status, .. } => {
            short(enums::Update::UserStatus(types::UpdateUserStatus { user_id: of.0, status: convert::status(*status) }), now)
        }
        Event::PeerBlocked { peer, blocked, .. } => {
            let update = enums::Update::PeerBlocked(types::UpdatePeerBlocked {
                blocked: *blocked,
                blocked_my_stories_from: false,
                peer_id: enums::Peer::User(types::PeerUser { user_id: peer.0 }),
            });
            short(update, now)
        }
        Event::ChannelTyping { channel, from, action } => {
            if *from == viewer {
                return Push::Skip;
            }
            let update = enums::Update::ChannelUserTyping(types::UpdateChannelUserTyping {
                channel_id: channel.0,
                top_msg_id: None,
                from_id: enums::Peer::User(types::PeerUser { user_id: from.0 }),
                action: convert::action_out(action),
            });
            short(update, now)
        }
        Event::Typing { from, group, action, .. } => {
            let action = convert::action_out(action);
            let update = match group {
                Some((g, false)) => enums::Update::ChatUserTyping(types::UpdateChatUserTyping {
                    chat_id: g.0,
                    from_id: enums::Peer::User(types::PeerUser { user_id: from.0 }),
                    action,
                }),
                _ => enums::Update::UserTyping(types::UpdateUserTyping { user_id: from.0, top_msg_id: None, action }),
            };
            short(update, now)
        }
        Event::KeyUnbound { auth_key_id: k, .. } => {
            if *k == auth_key_id {
                Push::Unbound
            } else {
                Push::Skip
            }
        }
    }
}
