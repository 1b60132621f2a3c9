//! contacts.*: the address book (`herald_domain::contacts`; client-compat §4.10).

use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::contacts::PhoneContact;
use herald_domain::model::{Peer, UserId};
use std::sync::Arc;

/// Telegram's cache hash over a list of ids (the "usual algorithm" of its API docs).
pub fn ids_hash(ids: impl IntoIterator<Item = i64>) -> i64 {
    let mut h: u64 = 0;
    for id in ids {
        h ^= h >> 21;
        h ^= h << 35;
        h ^= h >> 4;
        h = h.wrapping_add(id as u64);
    }
    h as i64
}

fn peer_settings_update(peer: UserId) -> enums::Update {
    enums::Update::PeerSettings(types::UpdatePeerSettings {
        peer: convert::peer(Peer::User(peer)),
        settings: enums::PeerSettings::Settings(crate::blank::peer_settings()),
    })
}

/// An `Updates` answer naming `ids` (as the caller now sees them) with a peer-settings
/// update for each, as Telegram answers address-book changes.
async fn changed(s: &Services, me: UserId, ids: &[UserId]) -> Result<enums::Updates, RpcError> {
    Ok(enums::Updates::Updates(types::Updates {
        updates: ids.iter().map(|u| peer_settings_update(*u)).collect(),
        users: convert::users(s, me, ids.iter().copied()).await?,
        chats: vec![],
        date: s.clock.now_secs() as i32,
        seq: 0,
    }))
}

pub async fn get_contacts(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::GetContacts) -> Result<enums::contacts::Contacts, RpcError> {
    let me = ctx.user()?;
    let book = s.accounts.contacts(me).await?;
    let mut ids: Vec<i64> = book.iter().map(|c| c.user.id.0).collect();
    ids.sort_unstable();
    let hash = ids_hash(std::iter::once(0).chain(ids));
    if r.hash != 0 && r.hash == hash {
        return Ok(enums::contacts::Contacts::NotModified);
    }
    let contacts = book.iter().map(|c| enums::Contact::Contact(types::Contact { user_id: c.user.id.0, mutual: c.has_viewer })).collect();
    let users = book.iter().map(|c| convert::seen_user(&s, me, c)).collect();
    Ok(enums::contacts::Contacts::Contacts(types::contacts::Contacts { contacts, saved_count: 0, users }))
}

pub async fn get_contact_ids(s: Arc<Services>, ctx: CallCtx, _: functions::contacts::GetContactIds) -> Result<Vec<i32>, RpcError> {
    let me = ctx.user()?;
    // Telegram's own answer is a list of 32-bit ids; ids past that range cannot be listed.
    Ok(s.accounts.contacts(me).await?.iter().filter_map(|c| i32::try_from(c.user.id.0).ok()).collect())
}

pub async fn get_statuses(s: Arc<Services>, ctx: CallCtx, _: functions::contacts::GetStatuses) -> Result<Vec<enums::ContactStatus>, RpcError> {
    let me = ctx.user()?;
    let book = s.accounts.contacts(me).await?;
    Ok(book
        .iter()
        .map(|c| {
            let status = match convert::seen_user(&s, me, c) {
                enums::User::User(u) => u.status.unwrap_or(enums::UserStatus::Empty),
                enums::User::Empty(_) => enums::UserStatus::Empty,
            };
            enums::ContactStatus::Status(types::ContactStatus { user_id: c.user.id.0, status })
        })
        .collect())
}

pub async fn import_contacts(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::ImportContacts) -> Result<enums::contacts::ImportedContacts, RpcError> {
    let me = ctx.user()?;
    let list = r
        .contacts
        .into_iter()
        .map(|c| {
            let enums::InputContact::InputPhoneContact(c) = c;
            PhoneContact { client_id: c.client_id, phone: c.phone, first_name: c.first_name, last_name: c.last_name }
        })
        .collect();
    let done = s.accounts.import_contacts(me, list).await?;
    let ids: Vec<UserId> = done.imported.iter().map(|(u, _)| *u).collect();
    Ok(enums::contacts::ImportedContacts::Contacts(types::contacts::ImportedContacts {
        imported: done.imported.iter().map(|(u, c)| enums::ImportedContact::Contact(types::ImportedContact { user_id: u.0, client_id: *c })).collect(),
        popular_invites: vec![],
        retry_contacts: done.retry,
        users: convert::users(&s, me, ids).await?,
    }))
}

pub async fn add_contact(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::AddContact) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let target = convert::input_user(&s, me, &r.id).await?;
    s.accounts.add_contact(me, &target, &r.first_name, &r.last_name, &r.phone).await?;
    changed(&s, me, &[target.id]).await
}

pub async fn delete_contacts(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::DeleteContacts) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let mut ids = Vec::with_capacity(r.id.len());
    for u in r.id.iter().take(herald_domain::contacts::IMPORT_MAX) {
        ids.push(convert::input_user(&s, me, u).await?.id);
    }
    let gone = s.accounts.delete_contacts(me, &ids).await?;
    changed(&s, me, &gone).await
}

pub async fn delete_by_phones(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::DeleteByPhones) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let phones: Vec<String> = r.phones.into_iter().take(herald_domain::contacts::IMPORT_MAX).collect();
    s.accounts.delete_by_phones(me, &phones).await?;
    Ok(true)
}

pub async fn search(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::Search) -> Result<enums::contacts::Found, RpcError> {
    let me = ctx.user()?;
    let limit = r.limit.clamp(1, 100) as usize;
    let found = s.accounts.search(me, &r.q, limit).await?;
    let channels = s.groups.public_by_prefix(&r.q, limit).await?;
    let mut members = Vec::with_capacity(channels.len());
    for g in &channels {
        members.push(s.groups.member(g.id, me).await?);
    }
    let user_peers = |ids: &[UserId]| ids.iter().map(|u| convert::peer(Peer::User(*u))).collect::<Vec<_>>();
    let mut results = user_peers(&found.others);
    results.extend(channels.iter().map(|g| convert::peer(g.peer())));
    Ok(enums::contacts::Found::Found(types::contacts::Found {
        my_results: user_peers(&found.mine),
        results,
        chats: channels.iter().zip(&members).map(|(g, m)| convert::chat(&s, me, g, m.as_ref())).collect(),
        users: convert::users(&s, me, found.mine.iter().chain(&found.others).copied()).await?,
    }))
}

pub async fn resolve_phone(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::ResolvePhone) -> Result<enums::contacts::ResolvedPeer, RpcError> {
    let me = ctx.user()?;
    let u = s.accounts.resolve_phone(me, &r.phone).await?;
    Ok(enums::contacts::ResolvedPeer::Peer(types::contacts::ResolvedPeer {
        peer: convert::peer(Peer::User(u.id)),
        chats: vec![],
        users: convert::users(&s, me, [u.id]).await?,
    }))
}

pub async fn reset_saved(_: Arc<Services>, ctx: CallCtx, _: functions::contacts::ResetSaved) -> Result<bool, RpcError> {
    ctx.user()?;
    Ok(true)
}

/// Numbers without an account are not remembered, so nothing is saved.
pub async fn get_saved(_: Arc<Services>, ctx: CallCtx, _: functions::contacts::GetSaved) -> Result<Vec<enums::SavedContact>, RpcError> {
    ctx.user()?;
    Ok(vec![])
}

#[cfg(test)]
mod tests {
    use super::ids_hash;

    /// Known answers computed independently in Python with the documented steps
    /// (`h ^= h >> 21; h ^= h << 35; h ^= h >> 4; h += id` on 64 bits).
    #[test]
    fn ids_hash_is_telegrams_usual_algorithm() {
        assert_eq!(ids_hash([]), 0);
        assert_eq!(ids_hash([0, 5, 7]), 182_536_110_092);
        assert_eq!(ids_hash([0, 1_000_000_001, 4_294_967_296]), -3_379_042_191_071_287_456);
    }
}
