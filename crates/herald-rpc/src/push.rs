//! Bus events → the `Updates` object pushed to a session (a top-level message, never inside
//! rpc_result; client-compat.md §4.3).

use crate::{convert, Services};
use grammers_tl_types::{enums, types, Serializable};
use herald_domain::bus::Event;
use herald_domain::model::UserId;

/// What a session should do with an event.
pub enum Push {
    /// Send these bytes (a serialized `Updates`).
    Send(Vec<u8>),
    /// Nothing for this session.
    Skip,
    /// The session's key was logged out: stop delivering the user's events.
    Unbound,
}

pub async fn encode(s: &Services, viewer: UserId, auth_key_id: i64, event: &Event) -> Push {
    let now = s.clock.now_secs() as i32;
    match event {
        Event::Updates { origin, updates, .. } => {
            if *origin == Some(auth_key_id) {
                return Push::Skip;
            }
            let mut tl = Vec::with_capacity(updates.len());
            let mut ids = vec![viewer];
            for u in updates {
                let (up, users) = convert::update(u);
                tl.push(up);
                ids.extend(users);
            }
            let users = match convert::users(s, viewer, ids).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(error = %e, "could not load users for a push; the client will catch up");
                    return Push::Skip;
                }
            };
            Push::Send(enums::Updates::Updates(types::Updates { updates: tl, users, chats: vec![], date: now, seq: 0 }).to_bytes())
        }
        Event::Typing { from, action, .. } => {
            let update = enums::Update::UserTyping(types::UpdateUserTyping { user_id: from.0, top_msg_id: None, action: convert::action_out(action) });
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
