//! Profiles, usernames, lookups and access hashes.

use crate::clock::Clock;
use crate::error::{AccountError, Result};
use crate::limits::{FloodTable, Limiter};
use crate::model::{Peer, User, UserId, SERVICE_USER_ID};
use crate::store::{AccountStore, MessageStore};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const USERNAME_MIN: usize = 5;
pub const USERNAME_MAX: usize = 32;
pub const NAME_MAX: usize = 64;
pub const ABOUT_MAX: usize = 70;

pub struct AccountService {
    pub(crate) store: Arc<dyn AccountStore>,
    pub(crate) messages: Arc<dyn MessageStore>,
    secret: [u8; 32],
    pub(crate) clock: Arc<dyn Clock>,
    /// Phone numbers looked up by `contacts.importContacts` / `resolvePhone`, per account.
    pub(crate) phone_lookups: Limiter<UserId>,
    pub(crate) presence: std::sync::Mutex<std::collections::HashMap<UserId, crate::presence::Presence>>,
    pub(crate) status_changes: Limiter<UserId>,
}

/// 5–32 characters of `a-z0-9_` (any case), starting with a letter, not ending with `_`,
/// without `__`.
pub fn valid_username(name: &str) -> bool {
    let n = name.len();
    (USERNAME_MIN..=USERNAME_MAX).contains(&n)
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.as_bytes()[0].is_ascii_alphabetic()
        && !name.ends_with('_')
        && !name.contains("__")
}

impl AccountService {
    pub fn new(store: Arc<dyn AccountStore>, messages: Arc<dyn MessageStore>, secret: [u8; 32], clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            messages,
            secret,
            clock,
            phone_lookups: Limiter::new(FloodTable::default().phone_lookups),
            presence: Default::default(),
            status_changes: Limiter::silent(FloodTable::default().status_changes),
        }
    }

    /// `photos.uploadProfilePhoto` / `updateProfilePhoto`: `photo_id` (a stored photo) becomes
    /// `me`'s current profile photo.
    pub async fn set_profile_photo(&self, me: UserId, photo_id: i64) -> Result<()> {
        Ok(self.store.add_profile_photo(me, photo_id, self.clock.now_secs() as i32).await?)
    }

    /// `photos.getUserPhotos`: `user`'s profile photos as `viewer` may see them (none when
    /// their profile-photo privacy, or a block, hides them), newest first: (id, date).
    pub async fn profile_photos(&self, viewer: UserId, user: UserId, limit: usize) -> Result<Vec<(i64, i32)>> {
        if !self.sees_photo(viewer, user).await? {
            return Ok(vec![]);
        }
        Ok(self.store.profile_photos(user, limit).await?)
    }

    /// Whether `viewer` may see `user`'s profile photo (privacy and blocks).
    pub async fn sees_photo(&self, viewer: UserId, user: UserId) -> Result<bool> {
        if viewer == user {
            return Ok(true);
        }
        let Some(seen) = self.store.users_seen_by(viewer, &[user]).await?.into_iter().next() else { return Ok(false) };
        let v = crate::privacy::Viewer { id: viewer, contact: seen.has_viewer, common_chats: &[] };
        Ok(!seen.blocked_viewer && !seen.user.deleted && seen.user.privacy.allows(crate::privacy::PrivacyKey::ProfilePhoto, user, v))
    }

    /// `photos.deletePhotos`: those of `ids` that are `me`'s profile photos go.
    pub async fn delete_profile_photos(&self, me: UserId, ids: Vec<i64>) -> Result<Vec<i64>> {
        Ok(self.store.delete_profile_photos(me, ids).await?)
    }

    /// `messages.getDefaultHistoryTTL`: the auto-delete period new private chats get.
    pub async fn default_history_ttl(&self, me: UserId) -> Result<i32> {
        Ok(self.store.default_history_ttl(me).await?)
    }

    /// `messages.setDefaultHistoryTTL`: private chats `me` starts from now on delete their
    /// messages after `period` seconds (0: never), as if `messages.setHistoryTTL` had been
    /// called before the first message (docs/client-compat.md §4.17).
    pub async fn set_default_history_ttl(&self, me: UserId, period: i32) -> Result<()> {
        if !(0..=crate::ttl::TTL_MAX_SECS).contains(&period) {
            return Err(crate::error::MessageError::TtlPeriodInvalid.into());
        }
        Ok(self.store.set_default_history_ttl(me, period).await?)
    }

    /// With the `phone_lookups` and `status_changes` rows of `limits`.
    pub fn with_limits(mut self, limits: &FloodTable) -> Self {
        self.phone_lookups = Limiter::new(limits.phone_lookups);
        self.status_changes = Limiter::silent(limits.status_changes);
        self
    }

    /// The access hash `viewer` sees for `target`: a keyed hash of both ids, so it is
    /// different for every viewer and cannot be forged or shared.
    pub fn access_hash(&self, viewer: UserId, target: UserId) -> i64 {
        self.keyed_hash(b"user-access-hash", viewer, target.0)
    }

    /// The access hash `viewer` sees for a channel (keyed like users', in its own domain).
    pub fn channel_access_hash(&self, viewer: UserId, channel: crate::model::GroupId) -> i64 {
        self.keyed_hash(b"channel-access-hash", viewer, channel.0)
    }

    /// The `hash` of one of `user`'s sessions in `account.getAuthorizations` (never 0, which
    /// means the current session): keyed, so it reveals nothing of the auth key id.
    pub fn session_hash(&self, user: UserId, auth_key_id: i64) -> i64 {
        match self.keyed_hash(b"session-hash", user, auth_key_id) {
            0 => 1,
            h => h,
        }
    }

    fn keyed_hash(&self, domain: &[u8], viewer: UserId, target: i64) -> i64 {
        let h = Sha256::new().chain_update(self.secret).chain_update(domain).chain_update(viewer.0.to_le_bytes()).chain_update(target.to_le_bytes()).finalize();
        i64::from_le_bytes(h[..8].try_into().unwrap())
    }

    /// Resolves a peer given by id and access hash. Hash 0 is accepted for peers the viewer
    /// already knows (itself, the service account, anyone it has a dialog with), as Telegram
    /// does for clients that lost their cache (client-compat.md §4.1). Anything else that
    /// does not match is `err`, never another user's data.
    pub async fn check_access(&self, viewer: UserId, target: UserId, hash: i64, err: AccountError) -> Result<User> {
        let known = || async {
            Ok::<_, crate::error::DomainError>(
                target == viewer || target == SERVICE_USER_ID || self.messages.dialog(viewer, Peer::User(target)).await?.is_some(),
            )
        };
        let ok = if hash == 0 { known().await? } else { hash == self.access_hash(viewer, target) };
        if !ok {
            return Err(err.into());
        }
        self.store.user_by_id(target).await?.ok_or_else(|| err.into())
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.store.user_by_id(id).await?)
    }

    pub async fn users(&self, ids: &[UserId]) -> Result<Vec<User>> {
        Ok(self.store.users_by_ids(ids).await?)
    }

    pub async fn resolve_username(&self, name: &str) -> Result<User> {
        let name = name.trim_start_matches('@');
        if !valid_username(name) {
            return Err(AccountError::UsernameInvalid.into());
        }
        self.store.user_by_username(name).await?.ok_or_else(|| AccountError::UsernameNotOccupied.into())
    }

    /// `account.checkUsername`: Ok(true) when `me` could take it.
    pub async fn check_username(&self, me: UserId, name: &str) -> Result<bool> {
        if !valid_username(name) {
            return Err(AccountError::UsernameInvalid.into());
        }
        Ok(self.store.user_by_username(name).await?.is_none_or(|u| u.id == me))
    }

    /// `account.updateUsername`: an empty name removes it.
    pub async fn update_username(&self, me: UserId, name: &str) -> Result<User> {
        let user = self.store.user_by_id(me).await?.ok_or(AccountError::UserIdInvalid)?;
        let new = (!name.is_empty()).then_some(name);
        if new.is_some_and(|n| !valid_username(n)) {
            return Err(AccountError::UsernameInvalid.into());
        }
        if user.username.as_deref() == new {
            return Err(AccountError::UsernameNotModified.into());
        }
        match self.store.set_username(me, new).await {
            Err(crate::error::StoreError::Conflict(_)) => return Err(AccountError::UsernameOccupied.into()),
            other => other?,
        }
        self.store.user_by_id(me).await?.ok_or_else(|| AccountError::UserIdInvalid.into())
    }

    /// `account.updateProfile`: only the given fields change. Names follow
    /// `auth::validate_names` (`FIRSTNAME_INVALID`, `LASTNAME_INVALID`); about is at most
    /// [`ABOUT_MAX`] characters, with control characters other than line breaks removed.
    pub async fn update_profile(&self, me: UserId, first: Option<&str>, last: Option<&str>, about: Option<&str>) -> Result<User> {
        let user = self.store.user_by_id(me).await?.ok_or(AccountError::UserIdInvalid)?;
        let (first, last) = crate::auth::validate_names(first.unwrap_or(&user.first_name), last.unwrap_or(&user.last_name)).map_err(|e| match e {
            crate::error::AuthError::LastNameInvalid => AccountError::LastNameInvalid,
            _ => AccountError::FirstNameInvalid,
        })?;
        let about: String = about.unwrap_or(&user.about).chars().filter(|&c| c == '\n' || !c.is_control()).collect();
        let about = if crate::text::has_visible(&about) { about.trim().to_string() } else { String::new() };
        if about.chars().count() > ABOUT_MAX {
            return Err(AccountError::AboutTooLong.into());
        }
        self.store.update_profile(me, &first, &last, &about).await?;
        self.store.user_by_id(me).await?.ok_or_else(|| AccountError::UserIdInvalid.into())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_username;

    #[test]
    fn username_rules() {
        for ok in ["alice", "Alice_2", "a1234", "abcdefghijklmnopqrstuvwxyz012345"] {
            assert!(valid_username(ok), "{ok}");
        }
        for bad in ["", "ab", "abcd", "1abcd", "_abcd", "abcd_", "ab__cd", "abc-d", "abcdefghijklmnopqrstuvwxyz0123456", "алиса"] {
            assert!(!valid_username(bad), "{bad}");
        }
    }
}
