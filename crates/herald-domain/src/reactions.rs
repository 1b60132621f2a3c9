//! Reactions (docs/client-compat.md §4.13): one emoji per user and message (Telegram's rule
//! for accounts without premium), shared by every copy of the message, pushed to everyone in
//! the chat as `updateMessageReactions` (no pts: clients re-read them with the messages).

use crate::bus::Event;
use crate::error::{MessageError, Result};
use crate::messages::MessageService;
use crate::model::*;

/// Bytes an emoji reaction may have (the longest emoji sequences are about 35 bytes).
pub const REACTION_BYTES_MAX: usize = 64;

/// Whether `emoji` can be a reaction: something visible, short, without letters, digits or
/// white space (custom emoji and paid reactions are not served).
pub fn valid_emoji(emoji: &str) -> bool {
    !emoji.is_empty()
        && emoji.len() <= REACTION_BYTES_MAX
        && crate::text::has_visible(emoji)
        && !emoji.chars().any(|c| c.is_alphanumeric() || c.is_whitespace() || c.is_control())
}

impl MessageService {
    /// `messages.sendReaction`: sets `viewer`'s reaction to message `id` of `peer` (`None`
    /// removes it). Returns the message's reactions as they now are.
    pub async fn react(&self, viewer: UserId, peer: Peer, id: i32, emoji: Option<String>) -> Result<Reactions> {
        if emoji.as_deref().is_some_and(|e| !valid_emoji(e)) {
            return Err(MessageError::ReactionInvalid.into());
        }
        let owner = self.box_for(viewer, peer).await?;
        // A basic group's copies stay with those who left: only members react.
        if let Peer::Chat(g) = peer {
            let (_, member) = self.group_and_member(g, viewer).await?;
            if !member.is_some_and(|m| m.role.is_member()) {
                return Err(crate::error::GroupError::ChatWriteForbidden.into());
            }
        }
        let msg = self
            .store
            .messages_by_ids(owner, &[id])
            .await?
            .into_iter()
            .find(|m| matches!(owner, BoxId::Channel(_)) || m.peer == peer)
            .ok_or(MessageError::MessageIdInvalid)?;
        if msg.action.is_some() {
            return Err(MessageError::MessageIdInvalid.into());
        }
        self.sends.take(viewer, 1.0, self.clock.now_ms()).map_err(MessageError::FloodWait)?;
        let Some(reactions) = self.store.react(msg.logical_id, viewer, emoji, self.now()).await? else {
            return Ok(msg.reactions.map(|r| *r).unwrap_or_default());
        };
        match owner {
            BoxId::Channel(channel) => {
                let broadcast = self.groups.group(channel).await?.is_some_and(|g| g.kind == GroupKind::Broadcast);
                self.bus.publish(Event::ChannelReactions { channel, msg_id: id, reactions: reactions.clone(), broadcast });
            }
            BoxId::User(_) => {
                for (b, copy_id) in self.store.copies(&[msg.logical_id]).await? {
                    let BoxId::User(user) = b else { continue };
                    // A private message's other copy is in the other side's box, whose dialog
                    // is with the viewer; a group's copies all belong to the group's dialog.
                    let seen_as = match peer {
                        Peer::User(_) if user != viewer => Peer::User(viewer),
                        p => p,
                    };
                    self.bus.publish(Event::Reactions { user, peer: seen_as, msg_id: copy_id, reactions: reactions.clone() });
                }
            }
        }
        Ok(reactions)
    }

    /// `messages.getMessagesReactions`: the reactions of the listed messages of `peer` that
    /// have any.
    pub async fn reactions_of(&self, viewer: UserId, peer: Peer, ids: &[i32]) -> Result<Vec<(i32, Reactions)>> {
        let owner = self.box_for(viewer, peer).await?;
        let msgs = self.messages_by_ids(owner, ids).await?;
        Ok(msgs
            .into_iter()
            .filter(|m| matches!(owner, BoxId::Channel(_)) || m.peer == peer)
            .map(|m| (m.id, m.reactions.map(|r| *r).unwrap_or_default()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_emoji;

    #[test]
    fn emoji_rules() {
        for ok in ["👍", "❤", "❤️", "👨‍👩‍👧", "🔥"] {
            assert!(valid_emoji(ok), "{ok}");
        }
        for bad in ["", " ", "a", "👍a", "1", "\u{200b}", "👍 ", &"👍".repeat(20)] {
            assert!(!valid_emoji(bad), "{bad:?}");
        }
    }
}
