//! Bus events → the `Updates` object pushed to a session (a top-level message, never inside
//! rpc_result; client-compat.md §4.3).

use crate::{convert, Services};
use grammers_tl_types::{enums, types, Serializable};
use herald_domain::bus::{Event, GroupChange};
use herald_domain::model::{BoxId, Group, GroupId, User, UserId};
use std::sync::Arc;

/// What a session should do with an event.
pub enum Push {
    /// Send these bytes (a serialized `Updates`).
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

/// The users and groups a channel event names, loaded once per event for all receivers.
struct Loaded {
    users: Vec<User>,
    groups: Vec<Group>,
}

fn updates(updates: Vec<enums::Update>, users: Vec<enums::User>, chats: Vec<enums::Chat>, date: i32) -> Vec<u8> {
    enums::Updates::Updates(types::Updates { updates, users, chats, date, seq: 0 }).to_bytes()
}

pub async fn encode(s: &Services, viewer: UserId, auth_key_id: i64, event: &Event) -> Push {
    let now = s.clock.now_secs() as i32;
    match event {
        Event::Updates { origin, updates: ups, .. } => {
            if *origin == Some(auth_key_id) {
                return Push::Skip;
            }
            let mut tl = Vec::with_capacity(ups.len());
            let (mut ids, mut groups) = (vec![viewer], vec![]);
            for u in ups {
                let (up, users, gs) = convert::update(viewer, BoxId::User(viewer), u);
                tl.push(up);
                ids.extend(users);
                groups.extend(gs);
            }
            let loaded = async { Ok::<_, crate::RpcError>((convert::users(s, viewer, ids).await?, convert::chats(s, viewer, groups).await?)) };
            match loaded.await {
                Ok((users, chats)) => Push::Send(updates(tl, users, chats, now)),
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
            let mut tl = Vec::with_capacity(ups.len());
            let (mut ids, mut gids) = (vec![], vec![*channel]);
            for u in ups {
                let (up, users, gs) = convert::update(viewer, BoxId::Channel(*channel), u);
                tl.push(up);
                ids.extend(users);
                gids.extend(gs);
            }
            // One store read per event, whatever the number of receivers.
            let loaded = rendered
                .0
                .get_or_try_init(|| async {
                    ids.sort();
                    ids.dedup();
                    gids.sort();
                    gids.dedup();
                    let users = s.accounts.users(&ids).await?;
                    let groups = s.groups.known(viewer, &gids).await?.into_iter().map(|(g, _)| g).collect();
                    Ok::<_, herald_domain::DomainError>(Arc::new(Loaded { users, groups }) as Arc<dyn std::any::Any + Send + Sync>)
                })
                .await;
            let Some(loaded) = loaded.ok().and_then(|l| l.clone().downcast::<Loaded>().ok()) else {
                tracing::warn!("could not load a channel push's entities; members will catch up");
                return Push::Skip;
            };
            let users = loaded.users.iter().map(|u| convert::user(s, viewer, u)).collect();
            // Pushes show the channel as to a plain member; rights come with getChannels.
            let member = herald_domain::model::Member::new(*channel, viewer, herald_domain::model::Role::Member, viewer, 0);
            let chats = loaded.groups.iter().map(|g| convert::chat(s, viewer, g, Some(&member))).collect();
            Push::Send(updates(tl, users, chats, now))
        }
        Event::Group { group, channel, .. } => {
            let update = if *channel {
                enums::Update::Channel(types::UpdateChannel { channel_id: group.0 })
            } else {
                enums::Update::Chat(types::UpdateChat { chat_id: group.0 })
            };
            let chats = convert::chats(s, viewer, [*group]).await.unwrap_or_default();
            Push::Send(updates(vec![update], vec![], chats, now))
        }
        Event::ReadChannel { channel, max_id, still_unread, pts, .. } => {
            let update = enums::Update::ReadChannelInbox(types::UpdateReadChannelInbox {
                folder_id: None,
                channel_id: channel.0,
                max_id: *max_id,
                still_unread_count: *still_unread,
                pts: *pts,
            });
            Push::Send(enums::Updates::UpdateShort(types::UpdateShort { update, date: now }).to_bytes())
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
            Push::Send(enums::Updates::UpdateShort(types::UpdateShort { update, date: now }).to_bytes())
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
