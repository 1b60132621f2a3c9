//! Privacy settings (docs/client-compat.md §4.19): who may see an account's last-seen time and
//! phone number, find it by its number, and add it to groups; with Telegram's defaults
//! (the phone number to contacts, everything else to everybody).
//!
//! A setting is a list of rules. They are read the way Telegram's clients present them: the
//! listed exceptions first (a user or chat named in a "never" list is refused, one named in an
//! "always" list is let in), then the base rule (everybody, contacts, nobody).

use crate::accounts::AccountService;
use crate::error::{AccountError, Result};
use crate::model::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Users one rule may list.
pub const RULE_USERS_MAX: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PrivacyKey {
    StatusTimestamp,
    PhoneNumber,
    AddedByPhone,
    ChatInvite,
    Forwards,
    ProfilePhoto,
    PhoneCall,
    PhoneP2P,
    VoiceMessages,
    About,
    Birthday,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    AllowAll,
    AllowContacts,
    AllowUsers(Vec<i64>),
    AllowChats(Vec<i64>),
    DisallowAll,
    DisallowContacts,
    DisallowUsers(Vec<i64>),
    DisallowChats(Vec<i64>),
}

/// An account's settings; keys without one use [`default_rules`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privacy(pub BTreeMap<PrivacyKey, Vec<Rule>>);

/// Telegram's defaults: the phone number is shown to contacts, the rest to everybody.
pub fn default_rules(key: PrivacyKey) -> Vec<Rule> {
    match key {
        PrivacyKey::PhoneNumber => vec![Rule::AllowContacts],
        _ => vec![Rule::AllowAll],
    }
}

/// What is known of a viewer when a setting is read for them.
#[derive(Clone, Copy, Debug)]
pub struct Viewer<'a> {
    pub id: UserId,
    /// The account has the viewer among its contacts.
    pub contact: bool,
    /// Groups the viewer shares with the account (for chat rules), when known.
    pub common_chats: &'a [i64],
}

impl Privacy {
    pub fn rules(&self, key: PrivacyKey) -> Vec<Rule> {
        self.0.get(&key).cloned().unwrap_or_else(|| default_rules(key))
    }

    /// Whether `viewer` may see or do what `key` guards. The account itself always may.
    pub fn allows(&self, key: PrivacyKey, owner: UserId, viewer: Viewer<'_>) -> bool {
        if viewer.id == owner {
            return true;
        }
        let rules = self.rules(key);
        let id = viewer.id.0;
        let in_chats = |chats: &[i64]| chats.iter().any(|c| viewer.common_chats.contains(c));
        for r in &rules {
            match r {
                Rule::DisallowUsers(u) if u.contains(&id) => return false,
                Rule::DisallowChats(c) if in_chats(c) => return false,
                _ => {}
            }
        }
        for r in &rules {
            match r {
                Rule::AllowUsers(u) if u.contains(&id) => return true,
                Rule::AllowChats(c) if in_chats(c) => return true,
                _ => {}
            }
        }
        let mut allowed = false;
        for r in &rules {
            match r {
                Rule::AllowAll => allowed = true,
                Rule::AllowContacts => allowed = viewer.contact,
                Rule::DisallowAll => allowed = false,
                Rule::DisallowContacts if viewer.contact => allowed = false,
                _ => {}
            }
        }
        allowed
    }
}

impl AccountService {
    /// `account.getPrivacy`: the account's rules for `key` (the defaults when never set).
    pub async fn privacy(&self, me: UserId, key: PrivacyKey) -> Result<Vec<Rule>> {
        let user = self.store.user_by_id(me).await?.ok_or(AccountError::UserIdInvalid)?;
        Ok(user.privacy.rules(key))
    }

    /// `account.setPrivacy`: replaces the rules for `key`. Lists of more than
    /// [`RULE_USERS_MAX`] users, or no base rule at all, are refused (`PRIVACY_VALUE_INVALID`;
    /// a list of exceptions alone means "nobody else", as Telegram's clients send it).
    pub async fn set_privacy(&self, me: UserId, key: PrivacyKey, mut rules: Vec<Rule>) -> Result<Vec<Rule>> {
        let too_long = rules.iter().any(|r| match r {
            Rule::AllowUsers(u) | Rule::DisallowUsers(u) | Rule::AllowChats(u) | Rule::DisallowChats(u) => u.len() > RULE_USERS_MAX,
            _ => false,
        });
        // Which chats two users share is not worked out when a user is shown, so a "never the
        // members of these chats" rule could not be kept; it is refused rather than ignored.
        // ("Always the members of these chats" is kept and, for now, lets no one more in.)
        let unenforceable = rules.iter().any(|r| matches!(r, Rule::DisallowChats(_)));
        if too_long || unenforceable || rules.len() > 16 {
            return Err(AccountError::PrivacyValueInvalid.into());
        }
        if !rules.iter().any(|r| matches!(r, Rule::AllowAll | Rule::AllowContacts | Rule::DisallowAll)) {
            rules.push(Rule::DisallowAll);
        }
        let mut user = self.store.user_by_id(me).await?.ok_or(AccountError::UserIdInvalid)?;
        user.privacy.0.insert(key, rules.clone());
        self.store.set_privacy(me, &user.privacy).await?;
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(id: i64, contact: bool) -> Viewer<'static> {
        Viewer { id: UserId(id), contact, common_chats: &[] }
    }

    #[test]
    fn rules_read_exceptions_first_then_the_base() {
        let owner = UserId(1);
        let mut p = Privacy::default();
        // Defaults.
        assert!(p.allows(PrivacyKey::StatusTimestamp, owner, viewer(2, false)));
        assert!(!p.allows(PrivacyKey::PhoneNumber, owner, viewer(2, false)));
        assert!(p.allows(PrivacyKey::PhoneNumber, owner, viewer(2, true)));
        assert!(p.allows(PrivacyKey::PhoneNumber, owner, viewer(1, false)), "oneself");
        // Contacts, except 3; plus 4 who is not a contact.
        p.0.insert(PrivacyKey::StatusTimestamp, vec![Rule::AllowContacts, Rule::DisallowUsers(vec![3]), Rule::AllowUsers(vec![4])]);
        assert!(p.allows(PrivacyKey::StatusTimestamp, owner, viewer(2, true)));
        assert!(!p.allows(PrivacyKey::StatusTimestamp, owner, viewer(3, true)));
        assert!(p.allows(PrivacyKey::StatusTimestamp, owner, viewer(4, false)));
        assert!(!p.allows(PrivacyKey::StatusTimestamp, owner, viewer(5, false)));
        // Nobody, except members of chat 9.
        p.0.insert(PrivacyKey::ChatInvite, vec![Rule::DisallowAll, Rule::AllowChats(vec![9])]);
        assert!(!p.allows(PrivacyKey::ChatInvite, owner, viewer(2, true)));
        assert!(p.allows(PrivacyKey::ChatInvite, owner, Viewer { id: UserId(2), contact: false, common_chats: &[9] }));
        // Everybody but contacts.
        p.0.insert(PrivacyKey::Forwards, vec![Rule::AllowAll, Rule::DisallowContacts]);
        assert!(p.allows(PrivacyKey::Forwards, owner, viewer(2, false)));
        assert!(!p.allows(PrivacyKey::Forwards, owner, viewer(2, true)));
    }
}
