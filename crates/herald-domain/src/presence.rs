//! Online status (docs/client-compat.md §4.15): `account.updateStatus` marks an account
//! online for five minutes (clients repeat it while in use) or offline from now; the time it
//! went offline is kept as "last seen". Those who have the account among their contacts are
//! told of each change between online and offline.
//!
//! Online state lives in memory (one entry per account that ever reported a status); the last
//! seen time is also written to the store when an account goes offline, so it survives a
//! restart. An online mark lost in a restart reads as "recently", which is what it was.

use crate::accounts::AccountService;
use crate::bus::{Event, EventBus};
use crate::error::Result;
use crate::model::*;

/// How long one "online" report lasts (Telegram's clients repeat it every minute or so).
pub const ONLINE_FOR_SECS: i64 = 300;
/// Contacts told of one status change at most (the rest see it when they next load the user).
pub const STATUS_FANOUT_MAX: usize = 10_000;

/// What a user's status shows, before privacy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// Online until this time.
    Online { expires: i64 },
    /// Last seen at this time.
    Offline { was_online: i64 },
    /// Nothing known (never reported, or a service account).
    Unknown,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Presence {
    pub online_until: i64,
    pub last_seen: i64,
}

impl AccountService {
    /// `user`'s status now: online while a report lasts, else last seen (from memory, or the
    /// store's `last_seen`).
    pub fn status(&self, user: &User) -> Status {
        if user.is_service {
            return Status::Unknown;
        }
        let now = self.clock.now_secs();
        let p = self.presence.lock().expect("presence lock").get(&user.id).copied().unwrap_or_default();
        if p.online_until > now {
            return Status::Online { expires: p.online_until };
        }
        let seen = p.online_until.max(p.last_seen).max(user.last_seen);
        if seen > 0 {
            Status::Offline { was_online: seen.min(now) }
        } else {
            Status::Unknown
        }
    }

    /// `account.updateStatus`: online for [`ONLINE_FOR_SECS`], or offline now. A change
    /// between the two is told to everyone who has the account among their contacts
    /// (`Event::UserStatus`), at most the `status_changes` flood row
    /// a minute; past that the status still changes, silently.
    pub async fn update_status(&self, user: UserId, offline: bool, bus: &dyn EventBus) -> Result<()> {
        let now = self.clock.now_secs();
        let (was_online, status) = {
            let mut map = self.presence.lock().expect("presence lock");
            let p = map.entry(user).or_default();
            let was_online = p.online_until > now;
            if offline {
                p.last_seen = now;
                p.online_until = 0;
            } else {
                p.online_until = now + ONLINE_FOR_SECS;
            }
            (was_online, if offline { Status::Offline { was_online: now } } else { Status::Online { expires: now + ONLINE_FOR_SECS } })
        };
        if offline {
            self.store.set_last_seen(user, now).await?;
        }
        // No change between online and offline: nothing to tell.
        if was_online != offline {
            return Ok(());
        }
        if self.status_changes.take(user, 1.0, self.clock.now_ms()).is_err() {
            return Ok(());
        }
        // Only to those the last-seen privacy lets see it, and not to whom the account blocked.
        let Some(me) = self.store.user_by_id(user).await? else { return Ok(()) };
        let mine: Vec<UserId> = self.store.contacts(user).await?.into_iter().map(|c| c.target).collect();
        let blocked: Vec<UserId> = self.messages.blocked(user, 0, STATUS_FANOUT_MAX as i32).await?.0.into_iter().map(|(u, _)| u).collect();
        for owner in self.store.contact_owners(user, STATUS_FANOUT_MAX).await? {
            if blocked.contains(&owner) {
                continue;
            }
            let viewer = crate::privacy::Viewer { id: owner, contact: mine.contains(&owner), common_chats: &[] };
            if me.privacy.allows(crate::privacy::PrivacyKey::StatusTimestamp, user, viewer) {
                bus.publish(Event::UserStatus { user: owner, of: user, status });
            }
        }
        Ok(())
    }
}
