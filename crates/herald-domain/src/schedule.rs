//! Scheduled messages (docs/client-compat.md §4.18): `sendMessage` with `schedule_date` keeps
//! the message aside (its own id sequence per account) until its time; the server's timers
//! then send it through the ordinary send path under the random id the client gave, so a
//! crash between sending and forgetting it sends nothing twice (the send deduplicates).

use crate::bus::{Event, EventBus};
use crate::clock::Clock;
use crate::error::{MessageError, Result, StoreError};
use crate::messages::{validate_text, MessageService, SendRequest, Sent};
use crate::model::*;
use crate::store::ScheduledStore;
use std::sync::Arc;

/// Messages one account may have waiting per chat (Telegram's limit).
pub const SCHEDULED_PER_PEER_MAX: usize = 100;
/// How far ahead a message may be scheduled.
pub const SCHEDULE_AHEAD_MAX_SECS: i32 = 366 * 86_400;
/// Scheduled messages sent per timer pass at most.
pub const DUE_BATCH: usize = 100;

pub struct ScheduleService {
    store: Arc<dyn ScheduledStore>,
    messages: Arc<MessageService>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
}

impl ScheduleService {
    pub fn new(store: Arc<dyn ScheduledStore>, messages: Arc<MessageService>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>) -> Self {
        Self { store, messages, bus, clock }
    }

    /// Keeps `req` to be sent at `date` (`SCHEDULE_DATE_TOO_LATE` past a year,
    /// `SCHEDULE_TOO_MUCH` past 100 waiting for the chat). The chat must accept the sender now
    /// (rights are checked again when it is sent). Retries with the same random id return
    /// the message already kept.
    pub async fn schedule(&self, req: SendRequest, date: i32, media: Option<Media>) -> Result<Scheduled> {
        if media.is_some() {
            crate::messages::validate_caption(&req.text, &req.entities)?;
        } else {
            validate_text(&req.text, &req.entities)?;
        }
        let now = self.clock.now_secs() as i32;
        if date > now + SCHEDULE_AHEAD_MAX_SECS {
            return Err(MessageError::ScheduleDateTooLate.into());
        }
        // The chat must take the sender's messages now (Telegram answers at once, e.g.
        // CHAT_ADMIN_REQUIRED in a broadcast channel); it is checked again when sent.
        self.messages.check_can_post(req.from, req.peer).await?;
        self.messages.sends.take(req.from, 1.0, self.clock.now_ms()).map_err(MessageError::FloodWait)?;
        let s = Scheduled {
            owner: req.from,
            id: 0,
            peer: req.peer,
            text: req.text,
            entities: req.entities,
            reply_to: req.reply_to,
            random_id: req.random_id,
            date,
            media: media.map(Box::new),
        };
        match self.store.put_scheduled(s, SCHEDULED_PER_PEER_MAX).await {
            Err(StoreError::Conflict(_)) => Err(MessageError::ScheduleTooMuch.into()),
            other => Ok(other?),
        }
    }

    /// The owner's scheduled messages for `peer` (those among `ids` when given), by time.
    pub async fn list(&self, owner: UserId, peer: Peer, ids: Option<&[i32]>) -> Result<Vec<Scheduled>> {
        Ok(self.store.scheduled(owner, peer, ids).await?)
    }

    /// `messages.deleteScheduledMessages`: forgets them; the owner's sessions are told.
    pub async fn delete(&self, owner: UserId, peer: Peer, ids: &[i32]) -> Result<Vec<i32>> {
        let mine: Vec<i32> = self.store.scheduled(owner, peer, Some(ids)).await?.into_iter().map(|s| s.id).collect();
        // One being sent right now is past deleting (it went out).
        let gone: Vec<i32> = self.store.delete_scheduled(owner, &mine, false).await?.into_iter().map(|s| s.id).collect();
        if !gone.is_empty() {
            self.bus.publish(Event::ScheduledGone { user: owner, peer, ids: gone.clone(), sent: vec![] });
        }
        Ok(gone)
    }

    /// Sends one scheduled message now and forgets it (`sendScheduledMessages`, and the
    /// timers when it is due). It is claimed first, so a delete meanwhile cannot both say it
    /// went and let it go; a crash after the claim sends it again under the same random id,
    /// which the send deduplicates. A wait (flood, slow mode) puts it back for later; a
    /// message the chat no longer accepts is dropped (logged).
    async fn send_now(&self, s: Scheduled) -> Result<Option<Sent>> {
        use crate::error::{DomainError, GroupError};
        if !self.store.claim_scheduled(s.owner, s.id).await? {
            return Ok(None);
        }
        let req = SendRequest {
            from: s.owner,
            peer: s.peer,
            origin_key: 0,
            random_id: s.random_id,
            text: s.text.clone(),
            entities: s.entities.clone(),
            reply_to: s.reply_to,
        };
        let sent = match &s.media {
            Some(media) => self.messages.send_media(req, (**media).clone()).await,
            None => self.messages.send(req).await,
        };
        let sent = match sent {
            Ok(sent) => Some(sent),
            Err(DomainError::Store(e)) => return Err(e.into()),
            Err(DomainError::Message(MessageError::FloodWait(w)) | DomainError::Group(GroupError::SlowmodeWait(w))) => {
                let later = self.clock.now_secs() as i32 + w.clamp(1, 86_400) as i32;
                self.store.reschedule(s.owner, s.id, later).await?;
                return Ok(None);
            }
            Err(e) => {
                tracing::debug!(error = %e, owner = s.owner.0, "a scheduled message could not be sent; dropped");
                None
            }
        };
        self.store.delete_scheduled(s.owner, &[s.id], true).await?;
        let sent_ids = sent.iter().filter_map(|x| if let UpdateKind::NewMessage(m) = &x.update.kind { Some(m.id) } else { None }).collect();
        self.bus.publish(Event::ScheduledGone { user: s.owner, peer: s.peer, ids: vec![s.id], sent: sent_ids });
        Ok(sent)
    }

    /// `messages.sendScheduledMessages`: sends the listed ones now.
    pub async fn send_listed(&self, owner: UserId, peer: Peer, ids: &[i32]) -> Result<Vec<Sent>> {
        let mut out = vec![];
        for s in self.store.scheduled(owner, peer, Some(ids)).await? {
            out.extend(self.send_now(s).await?);
        }
        Ok(out)
    }

    /// Sends what is due (at most [`DUE_BATCH`]); returns how many were handled.
    pub async fn send_due(&self) -> Result<usize> {
        let due = self.store.due_scheduled(self.clock.now_secs() as i32, DUE_BATCH).await?;
        let n = due.len();
        for s in due {
            self.send_now(s).await?;
        }
        Ok(n)
    }
}
