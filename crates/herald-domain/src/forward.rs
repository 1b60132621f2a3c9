//! Forwarding messages (docs/client-compat.md §4.12): each forwarded message is a new message
//! in the target chat, sent through the ordinary send path (rights, blocks, budgets, mentions),
//! carrying a header that names where it first came from.

use crate::error::{MessageError, Result};
use crate::messages::{MessageService, SendRequest, Sent};
use crate::model::*;

/// Messages one `forwardMessages` call may carry (Telegram's limit).
pub const FORWARD_MAX: usize = 100;

/// The header a forward of `m` (read in `from_peer`) gets: the original's own header when it
/// was itself forwarded; a broadcast post names its channel, anything else its sender. In
/// Saved Messages (`to` is `me`) it also says where it was saved from.
pub fn origin(m: &Message, from_peer: Peer, to: Peer, me: UserId) -> Forward {
    let mut f = m.fwd.as_deref().cloned().unwrap_or_else(|| {
        if m.post {
            Forward { from: m.peer, date: m.date, channel_post: Some(m.id), post_author: m.post_author.clone(), saved_from: None, hidden_name: None }
        } else {
            Forward { from: Peer::User(m.from), date: m.date, channel_post: None, post_author: None, saved_from: None, hidden_name: None }
        }
    });
    f.saved_from = (to == Peer::User(me)).then_some((from_peer, m.id));
    f
}

pub struct ForwardRequest<'a> {
    pub from: UserId,
    pub origin_key: i64,
    pub from_peer: Peer,
    pub ids: &'a [i32],
    pub random_ids: &'a [i64],
    pub to: Peer,
    /// Send copies without a header (`drop_author`).
    pub drop_author: bool,
}

impl MessageService {
    /// The name a forward shows instead of its origin user, when their forwards privacy does
    /// not let `forwarder` link to them (None: the origin may be shown).
    async fn hidden_origin(&self, origin: Peer, forwarder: UserId) -> Result<Option<String>> {
        let (Peer::User(u), Some(accounts)) = (origin, self.accounts.as_ref()) else { return Ok(None) };
        let Some(seen) = accounts.users_seen_by(forwarder, &[u]).await?.into_iter().next() else { return Ok(None) };
        let viewer = crate::privacy::Viewer { id: forwarder, contact: seen.has_viewer, common_chats: &[] };
        if seen.user.privacy.allows(crate::privacy::PrivacyKey::Forwards, u, viewer) {
            return Ok(None);
        }
        let name = [seen.user.first_name.as_str(), seen.user.last_name.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
        Ok(Some(name))
    }

    /// `messages.forwardMessages`: the messages of `from_peer` named by `ids`, in that order,
    /// as new messages in `to`. Ids that do not name a message there (or name a service
    /// message) are skipped; none at all is `MESSAGE_ID_INVALID`. Each message is its own
    /// send under its own random id, so a retried forward creates nothing twice. Returns each
    /// sent message with its random id.
    pub async fn forward(&self, r: ForwardRequest<'_>) -> Result<Vec<(i64, Sent)>> {
        if r.ids.len() != r.random_ids.len() {
            return Err(MessageError::RandomIdInvalid.into());
        }
        if r.ids.is_empty() {
            return Err(MessageError::MessageIdInvalid.into());
        }
        if r.ids.len() > FORWARD_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        let src = self.box_for(r.from, r.from_peer).await?;
        let found = self.store.messages_by_ids(src, r.ids).await?;
        let mut out = Vec::with_capacity(r.ids.len());
        for (id, rid) in r.ids.iter().zip(r.random_ids) {
            let in_chat = |m: &&Message| m.id == *id && m.action.is_none() && (matches!(src, BoxId::Channel(_)) || m.peer == r.from_peer);
            let Some(m) = found.iter().find(in_chat) else { continue };
            let mut fwd = (!r.drop_author).then(|| origin(m, r.from_peer, r.to, r.from));
            if let Some(f) = fwd.as_mut().filter(|f| f.hidden_name.is_none()) {
                f.hidden_name = self.hidden_origin(f.from, r.from).await?;
            }
            let req = SendRequest {
                from: r.from,
                peer: r.to,
                origin_key: r.origin_key,
                random_id: *rid,
                text: m.text.clone(),
                entities: m.entities.clone(),
                reply_to: None,
            };
            let later = !out.is_empty();
            // An album forwarded whole stays one (a fresh id, shared by the copies).
            let extra = crate::messages::Extra { fwd, media: m.media.as_deref().cloned(), grouped_id: m.grouped_id.map(|g| g ^ r.random_ids[0]) };
            out.push((*rid, self.send_with(req, extra, later).await?));
        }
        if out.is_empty() {
            return Err(MessageError::MessageIdInvalid.into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_first_origin() {
        let (alice, bob) = (UserId(1), UserId(2));
        let mut m = Message::draft(alice, Peer::User(bob), 100, "hi".into(), vec![], 5);
        m.id = 7;
        let f = origin(&m, Peer::User(alice), Peer::User(UserId(3)), bob);
        assert_eq!((f.from, f.date, f.channel_post, f.saved_from), (Peer::User(alice), 100, None, None));
        // Saved Messages remembers the source chat and id.
        assert_eq!(origin(&m, Peer::User(alice), Peer::User(bob), bob).saved_from, Some((Peer::User(alice), 7)));
        // A forward of a forward keeps the first origin.
        let mut again = Message::draft(bob, Peer::User(UserId(3)), 200, "hi".into(), vec![], 6);
        again.fwd = Some(Box::new(f.clone()));
        assert_eq!(origin(&again, Peer::User(UserId(3)), Peer::User(UserId(4)), UserId(3)).from, Peer::User(alice));
        // A broadcast post names its channel and its id there.
        let mut post = Message::draft(alice, Peer::Channel(GroupId(9)), 300, "news".into(), vec![], 8);
        post.post = true;
        post.id = 42;
        let f = origin(&post, Peer::Channel(GroupId(9)), Peer::User(bob), bob);
        assert_eq!((f.from, f.channel_post), (Peer::Channel(GroupId(9)), Some(42)));
    }
}
