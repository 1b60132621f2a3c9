//! Address books (docs/client-compat.md §4.10): importing contacts by phone number, adding one
//! by id, deleting, listing and searching. An entry keeps the names its owner gave and the
//! number they know; how each viewer relates to a user (`SeenUser`) decides the `contact` and
//! `mutual_contact` flags, the names shown, and whether the phone number is shown.
//!
//! Phone lookups (`importContacts`, `resolvePhone`) are the classic way to learn which numbers
//! have accounts, so each account gets a budget of them (the `phone_lookups` flood row); an import past it
//! hands the rest back in `retry_contacts`, as Telegram does.

use crate::accounts::AccountService;
use crate::error::{AccountError, Result};
use crate::model::*;

/// Contacts one `importContacts` call handles; the rest go back as `retry_contacts`.
pub const IMPORT_MAX: usize = 1000;
/// Entries one address book may hold.
pub const CONTACTS_MAX: usize = 10_000;

/// One `inputPhoneContact`.
#[derive(Clone, Debug)]
pub struct PhoneContact {
    pub client_id: i64,
    pub phone: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// (the account found, the client's id for the entry)
    pub imported: Vec<(UserId, i64)>,
    /// Client ids not looked up now (the lookup budget ran out, or the book is full).
    pub retry: Vec<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct Found {
    pub mine: Vec<UserId>,
    pub others: Vec<UserId>,
}

/// The names an entry gets: the given ones, cleaned, or the user's own when none are given.
fn entry_names(first: &str, last: &str, user: &User) -> (String, String) {
    let (first, last) = (crate::text::clean_name(first), crate::text::clean_name(last));
    if crate::text::has_visible(&first) || crate::text::has_visible(&last) {
        let cut = |s: String| s.chars().take(crate::accounts::NAME_MAX).collect::<String>();
        (cut(first), cut(last))
    } else {
        (user.first_name.clone(), user.last_name.clone())
    }
}

/// A search query as names are compared: without a leading `@`, lower case, not empty.
pub fn search_query(q: &str) -> Result<String> {
    let q = q.trim().trim_start_matches('@').to_lowercase();
    if q.is_empty() {
        return Err(AccountError::QueryTooShort.into());
    }
    Ok(q)
}

/// Whether `q` (lower case) starts one of the words of `text`.
fn starts_a_word(text: &str, q: &str) -> bool {
    text.to_lowercase().split(|c: char| !c.is_alphanumeric()).any(|w| w.starts_with(q))
}

impl AccountService {
    /// Spends one phone lookup of `me`'s budget, or says how long to wait.
    fn lookup(&self, me: UserId) -> std::result::Result<(), i64> {
        self.phone_lookups.take(me, 1.0, self.clock.now_ms())
    }

    /// Whether `user`'s `AddedByPhone` privacy lets `me` find them by their number (an
    /// account that may not looks like no account).
    async fn findable_by_phone(&self, me: UserId, user: &User) -> Result<bool> {
        let contact = self.store.users_seen_by(me, &[user.id]).await?.first().is_some_and(|s| s.has_viewer);
        let viewer = crate::privacy::Viewer { id: me, contact, common_chats: &[] };
        Ok(user.privacy.allows(crate::privacy::PrivacyKey::AddedByPhone, user.id, viewer))
    }

    /// `contacts.importContacts`: each number with an account becomes an entry of `me`'s book
    /// under the given names. Numbers without an account are skipped (not remembered).
    pub async fn import_contacts(&self, me: UserId, list: Vec<PhoneContact>) -> Result<Imported> {
        let mut out = Imported::default();
        let mut size = self.store.contacts(me).await?.len();
        let now = self.clock.now_secs();
        for (i, c) in list.into_iter().enumerate() {
            if i >= IMPORT_MAX || size >= CONTACTS_MAX || self.lookup(me).is_err() {
                out.retry.push(c.client_id);
                continue;
            }
            let Ok(phone) = crate::auth::normalize_phone(&c.phone) else { continue };
            let Some(user) = self.store.user_by_phone(&phone).await? else { continue };
            if !self.findable_by_phone(me, &user).await? {
                continue;
            }
            let (first_name, last_name) = entry_names(&c.first_name, &c.last_name, &user);
            let entry = Contact { owner: me, target: user.id, first_name, last_name, phone, date: now };
            size += usize::from(self.store.put_contact(entry).await?);
            out.imported.push((user.id, c.client_id));
        }
        Ok(out)
    }

    /// `contacts.addContact`: `target` (already checked as visible to `me`) joins `me`'s book
    /// under the given names (`CONTACT_NAME_EMPTY` without any); `phone` is the number `me`
    /// gave, kept only if it is the target's.
    pub async fn add_contact(&self, me: UserId, target: &User, first: &str, last: &str, phone: &str) -> Result<()> {
        if target.id == me || target.is_service {
            return Err(AccountError::ContactIdInvalid.into());
        }
        let (first_name, last_name) = (crate::text::clean_name(first), crate::text::clean_name(last));
        if !crate::text::has_visible(&first_name) && !crate::text::has_visible(&last_name) {
            return Err(AccountError::ContactNameEmpty.into());
        }
        let book = self.store.contacts(me).await?;
        if book.len() >= CONTACTS_MAX && !book.iter().any(|c| c.target == target.id) {
            return Err(AccountError::ContactsTooMuch.into());
        }
        let known = book.iter().find(|c| c.target == target.id).map(|c| c.phone.clone()).unwrap_or_default();
        // A number given here is kept only as a phone lookup would find it (budget and the
        // target's `AddedByPhone` privacy), so that keeping it or not reveals nothing more.
        let phone = match crate::auth::normalize_phone(phone) {
            Ok(p) if known.is_empty() && p == target.phone && self.lookup(me).is_ok() && self.findable_by_phone(me, target).await? => p,
            _ => known,
        };
        let cut = |s: String| s.chars().take(crate::accounts::NAME_MAX).collect::<String>();
        let entry = Contact { owner: me, target: target.id, first_name: cut(first_name), last_name: cut(last_name), phone, date: self.clock.now_secs() };
        self.store.put_contact(entry).await?;
        Ok(())
    }

    /// `contacts.deleteContacts`; returns the entries that were there.
    pub async fn delete_contacts(&self, me: UserId, targets: &[UserId]) -> Result<Vec<UserId>> {
        Ok(self.store.delete_contacts(me, targets).await?)
    }

    /// `contacts.deleteByPhones`: entries whose number, as `me` knows it, is one of `phones`.
    pub async fn delete_by_phones(&self, me: UserId, phones: &[String]) -> Result<Vec<UserId>> {
        let phones: Vec<String> = phones.iter().filter_map(|p| crate::auth::normalize_phone(p).ok()).collect();
        let book = self.contacts(me).await?;
        let gone: Vec<UserId> = book
            .iter()
            // Only the numbers the owner knows: matching the accounts' own would tell whether a
            // guessed number is theirs.
            .filter(|s| s.contact.as_ref().is_some_and(|c| !c.phone.is_empty() && phones.contains(&c.phone)))
            .map(|s| s.user.id)
            .collect();
        self.delete_contacts(me, &gone).await
    }

    /// `me`'s address book with each entry's relation to `me`, oldest first.
    pub async fn contacts(&self, me: UserId) -> Result<Vec<SeenUser>> {
        let book = self.store.contacts(me).await?;
        let ids: Vec<UserId> = book.iter().map(|c| c.target).collect();
        let mut seen = self.store.users_seen_by(me, &ids).await?;
        seen.sort_by_key(|s| s.contact.as_ref().map(|c| (c.date, c.target)));
        Ok(seen)
    }

    /// Users as `viewer` relates to them (unknown ids dropped).
    pub async fn users_seen_by(&self, viewer: UserId, ids: &[UserId]) -> Result<Vec<SeenUser>> {
        Ok(self.store.users_seen_by(viewer, ids).await?)
    }

    /// `contacts.resolvePhone`: the account with this number.
    pub async fn resolve_phone(&self, me: UserId, phone: &str) -> Result<User> {
        let phone = crate::auth::normalize_phone(phone).map_err(|_| AccountError::PhoneNotOccupied)?;
        self.lookup(me).map_err(AccountError::FloodWait)?;
        let user = self.store.user_by_phone(&phone).await?.ok_or(AccountError::PhoneNotOccupied)?;
        if !self.findable_by_phone(me, &user).await? {
            return Err(AccountError::PhoneNotOccupied.into());
        }
        Ok(user)
    }

    /// `contacts.search` among users: `me`'s contacts whose names or username have a word
    /// starting with `q`, then other users whose username starts with it (public channels:
    /// `GroupService::public_by_prefix`).
    pub async fn search(&self, me: UserId, q: &str, limit: usize) -> Result<Found> {
        let q = search_query(q)?;
        let limit = limit.clamp(1, 100);
        let mine: Vec<UserId> = self
            .contacts(me)
            .await?
            .into_iter()
            .filter(|s| {
                let c = s.contact.as_ref();
                let names = [
                    c.map(|c| c.first_name.as_str()),
                    c.map(|c| c.last_name.as_str()),
                    Some(&s.user.first_name),
                    Some(&s.user.last_name),
                    s.user.username.as_deref(),
                ];
                names.into_iter().flatten().any(|n| starts_a_word(n, &q))
            })
            .map(|s| s.user.id)
            .take(limit)
            .collect();
        let others = self
            .store
            .users_by_username_prefix(&q, limit + mine.len() + 1)
            .await?
            .into_iter()
            .map(|u| u.id)
            .filter(|id| *id != me && !mine.contains(id))
            .take(limit)
            .collect();
        Ok(Found { mine, others })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_starts_and_entry_names() {
        assert!(starts_a_word("Alice Liddell", "lid"));
        assert!(starts_a_word("alice_w", "w"));
        assert!(!starts_a_word("Alice", "lic"));
        let u = User {
            id: UserId(5),
            phone: "1".into(),
            first_name: "Real".into(),
            last_name: "Name".into(),
            username: None,
            about: String::new(),
            home_dc: 1,
            created_at: 0,
            is_service: false,
            last_seen: 0,
            privacy: Default::default(),
            deleted: false,
            account_ttl_days: 365,
            photo_id: None,
            photo_stripped: None,
        };
        assert_eq!(entry_names(" ", "\u{200b}", &u), ("Real".into(), "Name".into()));
        assert_eq!(entry_names("Mum", "", &u), ("Mum".into(), String::new()));
    }
}
