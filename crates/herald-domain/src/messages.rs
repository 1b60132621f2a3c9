//! Private messages, dialogs, read state, edits, deletes and the update sequence.

use crate::bus::{Event, EventBus};
use crate::clock::{random_u64, Clock};
use crate::error::{MessageError, Result};
use crate::limits::{Bucket, Limiter};
use crate::model::*;
use crate::store::{Changes, MessageStore, NewMessage};
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

/// Messages (sends and edits) an account may make at once, then per second: an anti-abuse
/// bound far above what a person or a load test's client sends.
pub const SEND_BURST: f64 = 5000.0;
pub const SENDS_PER_SEC: f64 = 1000.0;
/// What one message costs the store beyond its text (rows, indexes, the update log), for the
/// storage quota below.
pub const MESSAGE_OVERHEAD_BYTES: usize = 256;
/// Bytes an account may add to the store at once, and then per day: the quota that bounds how
/// fast one account can grow the store (a heavy user writes a few MB a day).
pub const STORED_BYTES_BURST: f64 = 256.0 * 1024.0 * 1024.0;
pub const STORED_BYTES_PER_DAY: f64 = 1024.0 * 1024.0 * 1024.0;

/// The per-account send budgets (defaults above; a deployment may tune them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SendLimits {
    pub sends: Bucket,
    pub stored_bytes: Bucket,
}

impl Default for SendLimits {
    fn default() -> Self {
        Self {
            sends: Bucket { burst: SEND_BURST, per_sec: SENDS_PER_SEC },
            stored_bytes: Bucket { burst: STORED_BYTES_BURST, per_sec: STORED_BYTES_PER_DAY / 86_400.0 },
        }
    }
}

pub struct MessageService {
    store: Arc<dyn MessageStore>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    sends: Limiter<UserId>,
    text_bytes: Limiter<UserId>,
}

/// What the sender's session gets back from a send.
#[derive(Clone, Debug)]
pub struct Sent {
    pub update: PtsUpdate,
    pub duplicate: bool,
}

pub struct SendRequest {
    pub from: UserId,
    pub to: UserId,
    pub origin_key: i64,
    pub random_id: i64,
    pub text: String,
    pub entities: Vec<Entity>,
    pub reply_to: Option<i32>,
}

impl MessageService {
    pub fn new(store: Arc<dyn MessageStore>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(store, bus, clock, SendLimits::default())
    }

    pub fn with_limits(store: Arc<dyn MessageStore>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>, limits: SendLimits) -> Self {
        Self { store, bus, clock, sends: Limiter::new(limits.sends), text_bytes: Limiter::new(limits.stored_bytes) }
    }

    /// Spends one send and the message's stored bytes from `who`'s budgets, or FLOOD_WAIT_X.
    fn spend(&self, who: UserId, text: &str, entities: &[Entity]) -> Result<()> {
        let now = self.clock.now_ms();
        let bytes = MESSAGE_OVERHEAD_BYTES + text.len() + entities.len() * 16 + entities.iter().map(|e| e.kind.extra_bytes()).sum::<usize>();
        self.sends.take(who, 1.0, now).map_err(MessageError::FloodWait)?;
        self.text_bytes.take(who, bytes as f64, now).map_err(MessageError::FloodWait)?;
        Ok(())
    }

    fn now(&self) -> i32 {
        self.clock.now_secs() as i32
    }

    fn publish(&self, changes: &Changes, origin: Option<(UserId, i64)>) {
        for (user, update) in changes {
            let origin = origin.filter(|(u, _)| u == user).map(|(_, k)| k);
            self.bus.publish(Event::Updates { user: *user, origin, updates: vec![update.clone()] });
        }
    }

    pub async fn send(&self, req: SendRequest) -> Result<Sent> {
        validate_text(&req.text, &req.entities)?;
        self.spend(req.from, &req.text, &req.entities)?;
        let appended = self
            .store
            .append(NewMessage {
                from: req.from,
                to: req.to,
                random_id: Some(req.random_id),
                logical_id: (random_u64() >> 1) as i64,
                date: self.now(),
                text: req.text,
                entities: req.entities,
                reply_to: req.reply_to,
                one_sided: false,
            })
            .await?;
        let sender = appended.sender.clone().expect("a two-sided message has a sender copy");
        if !appended.duplicate {
            let mut changes = vec![(req.from, sender.clone())];
            if let Some(r) = appended.recipient {
                changes.push((req.to, r));
            }
            self.publish(&changes, Some((req.from, req.origin_key)));
        }
        Ok(Sent { update: sender, duplicate: appended.duplicate })
    }

    /// A message from the service account (777000), such as a login code.
    pub async fn send_service_message(&self, to: UserId, text: String) -> Result<()> {
        let appended = self
            .store
            .append(NewMessage {
                from: SERVICE_USER_ID,
                to,
                random_id: None,
                logical_id: (random_u64() >> 1) as i64,
                date: self.now(),
                text,
                entities: vec![],
                reply_to: None,
                one_sided: true,
            })
            .await?;
        if let Some(r) = appended.recipient {
            self.publish(&vec![(to, r)], None);
        }
        Ok(())
    }

    /// Telegram's getHistory: newest first; `offset_id`/`offset_date` are exclusive upper
    /// bounds, `add_offset` skips (negative: reaches back to newer messages), `max_id`/`min_id`
    /// are exclusive bounds, `limit` is capped at 100.
    pub async fn history(&self, owner: UserId, peer: Peer, mut q: HistoryQuery) -> Result<(Vec<Message>, i32)> {
        q.limit = q.limit.clamp(0, HISTORY_LIMIT_MAX);
        q.add_offset = q.add_offset.max(-HISTORY_LIMIT_MAX);
        Ok(self.store.history(owner, peer, q).await?)
    }

    pub async fn messages_by_ids(&self, owner: UserId, ids: &[i32]) -> Result<Vec<Message>> {
        if ids.len() > IDS_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        Ok(self.store.messages_by_ids(owner, ids).await?)
    }

    pub async fn dialogs(&self, owner: UserId, offset_date: i32, offset_id: i32, limit: i32) -> Result<(Vec<Dialog>, Vec<Message>, i32)> {
        let (dialogs, count) = self.store.dialogs(owner, offset_date, offset_id, limit.clamp(1, 100)).await?;
        let tops: Vec<i32> = dialogs.iter().map(|d| d.top_message).collect();
        let messages = self.store.messages_by_ids(owner, &tops).await?;
        Ok((dialogs, messages, count))
    }

    /// Returns the reader's update (if anything was read) for its affectedMessages.
    pub async fn read_history(&self, owner: UserId, origin_key: i64, peer: Peer, max_id: i32) -> Result<Option<PtsUpdate>> {
        let changes = self.store.read_history(owner, peer, max_id).await?;
        self.publish(&changes, Some((owner, origin_key)));
        Ok(changes.into_iter().find(|(u, _)| *u == owner).map(|(_, up)| up))
    }

    pub async fn edit(&self, owner: UserId, origin_key: i64, id: i32, text: String, entities: Vec<Entity>) -> Result<PtsUpdate> {
        validate_text(&text, &entities)?;
        let msgs = self.store.messages_by_ids(owner, &[id]).await?;
        let Some(m) = msgs.into_iter().next() else { return Err(MessageError::MessageIdInvalid.into()) };
        if !m.out && m.peer != Peer::User(owner) {
            return Err(MessageError::MessageAuthorRequired.into());
        }
        if m.text == text && m.entities == entities {
            return Err(MessageError::MessageNotModified.into());
        }
        self.spend(owner, &text, &entities)?;
        let changes = self.store.edit(owner, id, &text, &entities, self.now()).await?;
        self.publish(&changes, Some((owner, origin_key)));
        changes.into_iter().find(|(u, _)| *u == owner).map(|(_, up)| up).ok_or_else(|| MessageError::MessageIdInvalid.into())
    }

    /// Returns the owner's update, or None when nothing was deleted.
    pub async fn delete(&self, owner: UserId, origin_key: i64, ids: &[i32], revoke: bool) -> Result<Option<PtsUpdate>> {
        if ids.len() > IDS_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        let changes = self.store.delete(owner, ids, revoke).await?;
        self.publish(&changes, Some((owner, origin_key)));
        Ok(changes.into_iter().find(|(u, _)| *u == owner).map(|(_, up)| up))
    }

    /// Deletes a dialog in chunks of [`DELETE_CHUNK`]; returns the owner's combined update
    /// (pts after the last chunk, pts_count summed), None when nothing was deleted.
    pub async fn delete_history(&self, owner: UserId, origin_key: i64, peer: Peer, max_id: i32, revoke: bool, just_clear: bool) -> Result<Option<PtsUpdate>> {
        let mut combined: Option<PtsUpdate> = None;
        loop {
            let (changes, more) = self.store.delete_history(owner, peer, max_id, revoke, just_clear, DELETE_CHUNK).await?;
            self.publish(&changes, Some((owner, origin_key)));
            if let Some((_, up)) = changes.into_iter().find(|(u, _)| *u == owner) {
                combined = Some(match combined {
                    Some(c) => PtsUpdate { pts: up.pts, pts_count: c.pts_count + up.pts_count, kind: up.kind },
                    None => up,
                });
            }
            if !more {
                return Ok(combined);
            }
        }
    }

    pub fn set_typing(&self, from: UserId, to: UserId, action: TypingAction) {
        if from != to {
            self.bus.publish(Event::Typing { user: to, from, action });
        }
    }

    pub async fn state(&self, owner: UserId) -> Result<BoxState> {
        Ok(self.store.state(owner).await?)
    }

    pub async fn difference(&self, owner: UserId, pts: i32) -> Result<Difference> {
        Ok(self.store.difference(owner, pts, DIFFERENCE_LIMIT).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DomainError;

    fn e(offset: i32, length: i32, kind: EntityKind) -> Entity {
        Entity { offset, length, kind }
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
