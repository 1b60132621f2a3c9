//! account.getPrivacy / setPrivacy (`herald_domain::privacy`; client-compat §4.19).

use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::error::{AccountError, DomainError};
use herald_domain::model::UserId;
use herald_domain::privacy::{PrivacyKey, Rule, RULE_USERS_MAX};
use std::sync::Arc;

fn key_in(k: &enums::InputPrivacyKey) -> Result<PrivacyKey, RpcError> {
    use enums::InputPrivacyKey as K;
    Ok(match k {
        K::StatusTimestamp => PrivacyKey::StatusTimestamp,
        K::PhoneNumber => PrivacyKey::PhoneNumber,
        K::AddedByPhone => PrivacyKey::AddedByPhone,
        K::ChatInvite => PrivacyKey::ChatInvite,
        K::Forwards => PrivacyKey::Forwards,
        K::ProfilePhoto => PrivacyKey::ProfilePhoto,
        K::PhoneCall => PrivacyKey::PhoneCall,
        K::PhoneP2P => PrivacyKey::PhoneP2P,
        K::VoiceMessages => PrivacyKey::VoiceMessages,
        K::About => PrivacyKey::About,
        K::Birthday => PrivacyKey::Birthday,
        _ => return Err(DomainError::from(AccountError::PrivacyKeyInvalid).into()),
    })
}

async fn rule_in(s: &Services, me: UserId, r: &enums::InputPrivacyRule) -> Result<Option<Rule>, RpcError> {
    use enums::InputPrivacyRule as R;
    let users = |list: &[enums::InputUser]| {
        let list = list.to_vec();
        async move {
            if list.len() > RULE_USERS_MAX {
                return Err(RpcError::from(DomainError::from(AccountError::PrivacyValueInvalid)));
            }
            let mut ids = Vec::with_capacity(list.len());
            for u in &list {
                ids.push(convert::input_user(s, me, u).await?.id.0);
            }
            Ok(ids)
        }
    };
    Ok(Some(match r {
        R::InputPrivacyValueAllowAll => Rule::AllowAll,
        R::InputPrivacyValueAllowContacts => Rule::AllowContacts,
        R::InputPrivacyValueDisallowAll => Rule::DisallowAll,
        R::InputPrivacyValueDisallowContacts => Rule::DisallowContacts,
        R::InputPrivacyValueAllowUsers(u) => Rule::AllowUsers(users(&u.users).await?),
        R::InputPrivacyValueDisallowUsers(u) => Rule::DisallowUsers(users(&u.users).await?),
        R::InputPrivacyValueAllowChatParticipants(c) => Rule::AllowChats(c.chats.clone()),
        R::InputPrivacyValueDisallowChatParticipants(c) => Rule::DisallowChats(c.chats.clone()),
        // Close friends, premium and bot rules name nobody here yet.
        _ => return Ok(None),
    }))
}

fn rule_out(r: &Rule) -> enums::PrivacyRule {
    use enums::PrivacyRule as P;
    match r {
        Rule::AllowAll => P::PrivacyValueAllowAll,
        Rule::AllowContacts => P::PrivacyValueAllowContacts,
        Rule::DisallowAll => P::PrivacyValueDisallowAll,
        Rule::DisallowContacts => P::PrivacyValueDisallowContacts,
        Rule::AllowUsers(u) => P::PrivacyValueAllowUsers(types::PrivacyValueAllowUsers { users: u.clone() }),
        Rule::DisallowUsers(u) => P::PrivacyValueDisallowUsers(types::PrivacyValueDisallowUsers { users: u.clone() }),
        Rule::AllowChats(c) => P::PrivacyValueAllowChatParticipants(types::PrivacyValueAllowChatParticipants { chats: c.clone() }),
        Rule::DisallowChats(c) => P::PrivacyValueDisallowChatParticipants(types::PrivacyValueDisallowChatParticipants { chats: c.clone() }),
    }
}

async fn rules_answer(s: &Services, me: UserId, rules: &[Rule]) -> Result<enums::account::PrivacyRules, RpcError> {
    let users: Vec<UserId> = rules
        .iter()
        .flat_map(|r| match r {
            Rule::AllowUsers(u) | Rule::DisallowUsers(u) => u.iter().map(|id| UserId(*id)).collect(),
            _ => vec![],
        })
        .collect();
    Ok(enums::account::PrivacyRules::Rules(types::account::PrivacyRules {
        rules: rules.iter().map(rule_out).collect(),
        chats: vec![],
        users: convert::users(s, me, users).await?,
    }))
}

pub async fn get_privacy(s: Arc<Services>, ctx: CallCtx, r: functions::account::GetPrivacy) -> Result<enums::account::PrivacyRules, RpcError> {
    let me = ctx.user()?;
    let rules = s.accounts.privacy(me, key_in(&r.key)?).await?;
    rules_answer(&s, me, &rules).await
}

pub async fn set_privacy(s: Arc<Services>, ctx: CallCtx, r: functions::account::SetPrivacy) -> Result<enums::account::PrivacyRules, RpcError> {
    let me = ctx.user()?;
    let key = key_in(&r.key)?;
    let mut rules = Vec::with_capacity(r.rules.len());
    for rule in r.rules.iter().take(17) {
        rules.extend(rule_in(&s, me, rule).await?);
    }
    let rules = s.accounts.set_privacy(me, key, rules).await?;
    rules_answer(&s, me, &rules).await
}
