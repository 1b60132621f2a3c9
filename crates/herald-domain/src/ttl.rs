//! Messages that delete themselves (docs/client-compat.md §4.17): a conversation's period
//! (`messages.setHistoryTTL`) stamps each message sent afterwards with `ttl_period`; the store
//! keeps each copy's deletion time, and [`MessageService::expire_due`] (run every second by
//! the server) deletes what is due on every side, pushing `updateDeleteMessages` as a delete
//! would. The times are stored, so deletions due during a restart happen right after it.

use crate::error::{GroupError, MessageError, Result};
use crate::messages::{MessageService, Sent};
use crate::model::*;
use crate::store::{BoxOp, NewCopy};

/// The longest period: a year (Telegram offers a day, a week, a month or a custom value).
pub const TTL_MAX_SECS: i32 = 366 * 86_400;
/// Copies deleted per pass at most.
pub const EXPIRE_BATCH: usize = 1000;

impl MessageService {
    /// `messages.setHistoryTTL`: messages sent to `peer` from now on delete themselves after
    /// `period` seconds (0 turns it off). In a private chat either side may set it, for both;
    /// in groups and channels admins may. A service message in the chat says so.
    pub async fn set_history_ttl(&self, me: UserId, origin_key: i64, peer: Peer, period: i32) -> Result<Sent> {
        if !(0..=TTL_MAX_SECS).contains(&period) {
            return Err(MessageError::TtlPeriodInvalid.into());
        }
        let action = Action::SetMessagesTtl { period };
        match peer {
            Peer::User(other) => {
                // It writes into the other side's chat: a send's budget, and never across a
                // block (checked in the write itself, as sends are).
                self.sends.take(me, 1.0, self.clock.now_ms()).map_err(MessageError::FloodWait)?;
                let mut msg = Message::draft(me, peer, self.now(), String::new(), vec![], crate::ids::next());
                msg.action = Some(action);
                let mut ops = vec![(BoxId::User(me), BoxOp::Append(NewCopy { message: msg.clone(), random_id: None, unread: false }))];
                if other != me {
                    ops.insert(0, (BoxId::User(other), BoxOp::UnlessBlocked { a: me, b: other }));
                    let copy = Message { peer: Peer::User(me), out: false, ..msg };
                    ops.push((BoxId::User(other), BoxOp::Append(NewCopy { message: copy, random_id: None, unread: true })));
                }
                let applied = match self.store.apply(ops, None).await {
                    Err(crate::error::StoreError::Conflict("deactivated")) => return Err(MessageError::InputUserDeactivated.into()),
                    Err(crate::error::StoreError::Conflict("blocked")) => {
                        let (by_me, _) = self.store.blocking(me, other).await?;
                        return Err(if by_me { MessageError::YouBlockedUser } else { MessageError::UserIsBlocked }.into());
                    }
                    other => other?,
                };
                // The period applies from the service message on (set after it, so the service
                // message itself never expires).
                self.store.set_ttl(BoxId::User(me), peer, period).await?;
                if other != me {
                    self.store.set_ttl(BoxId::User(other), Peer::User(me), period).await?;
                }
                self.publish(&applied, Some((me, origin_key)));
                let update = applied.of(BoxId::User(me)).cloned().ok_or_else(|| crate::error::StoreError::Backend("no sender copy".into()))?;
                Ok(Sent { update, owner: BoxId::User(me), duplicate: false })
            }
            Peer::Chat(g) | Peer::Channel(g) => {
                let (group, member) = self.group_and_member(g, me).await?;
                if !member.as_ref().is_some_and(|m| m.role.is_admin()) || group.deleted {
                    return Err(GroupError::ChatAdminRequired.into());
                }
                let members = self.groups.member_ids(g).await?;
                if group.kind.is_channel() {
                    self.store.set_ttl(BoxId::Channel(g), peer, period).await?;
                } else {
                    for m in &members {
                        self.store.set_ttl(BoxId::User(*m), peer, period).await?;
                    }
                }
                self.post_service(&group, me, action, &members, None, Some(origin_key)).await
            }
        }
    }

    /// Deletes the copies whose time has come (at most [`EXPIRE_BATCH`]), in one write, and
    /// tells their boxes' owners. Returns how many went.
    pub async fn expire_due(&self) -> Result<usize> {
        let due = self.store.expired(self.now(), EXPIRE_BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut by_box: Vec<(BoxId, Vec<i32>)> = Vec::new();
        for (b, id) in &due {
            match by_box.iter_mut().find(|(x, _)| x == b) {
                Some((_, ids)) => ids.push(*id),
                None => by_box.push((*b, vec![*id])),
            }
        }
        let ops = by_box.into_iter().map(|(b, ids)| (b, BoxOp::Delete { ids })).collect();
        let applied = self.store.apply(ops, None).await?;
        self.publish(&applied, None);
        Ok(due.len())
    }
}
