//! users.*, account.* and contacts.*: profiles and lookups.

use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::error::{AccountError, DomainError};
use std::sync::Arc;

pub async fn get_users(s: Arc<Services>, ctx: CallCtx, r: functions::users::GetUsers) -> Result<Vec<enums::User>, RpcError> {
    let me = ctx.user()?;
    let mut ids = Vec::with_capacity(r.id.len());
    for u in r.id.iter().take(200) {
        ids.push(convert::input_user(&s, me, u).await?.id);
    }
    // One read for how `me` relates to them all; answered in the order asked.
    let seen = s.accounts.users_seen_by(me, &ids).await?;
    Ok(ids.iter().filter_map(|id| seen.iter().find(|u| u.user.id == *id)).map(|u| convert::seen_user(&s, me, u)).collect())
}

pub async fn get_full_user(s: Arc<Services>, ctx: CallCtx, r: functions::users::GetFullUser) -> Result<enums::users::UserFull, RpcError> {
    let me = ctx.user()?;
    let user = convert::input_user(&s, me, &r.id).await?;
    let mut full_user = convert::user_full(&user);
    let enums::UserFull::Full(f) = &mut full_user;
    f.blocked = user.id != me && s.messages.is_blocked(me, user.id).await?;
    if let Some(id) = user.photo_id {
        if s.accounts.sees_photo(me, user.id).await? {
            f.profile_photo = s.files.file(id).await?.map(|p| convert::photo(&s.files, me, &p));
        }
    }
    // The chat's auto-delete period (messages.setHistoryTTL, or a default it started with).
    f.ttl_period = s.messages.dialog(me, herald_domain::model::Peer::User(user.id)).await?.map(|d| d.ttl_period).filter(|p| *p > 0);
    Ok(enums::users::UserFull::Full(types::users::UserFull { full_user, chats: vec![], users: convert::users(&s, me, [user.id]).await? }))
}

pub async fn update_username(s: Arc<Services>, ctx: CallCtx, r: functions::account::UpdateUsername) -> Result<enums::User, RpcError> {
    let me = ctx.user()?;
    let u = s.accounts.update_username(me, &r.username).await?;
    Ok(convert::user(&s, me, &u))
}

pub async fn check_username(s: Arc<Services>, ctx: CallCtx, r: functions::account::CheckUsername) -> Result<bool, RpcError> {
    Ok(s.accounts.check_username(ctx.user()?, &r.username).await?)
}

pub async fn update_profile(s: Arc<Services>, ctx: CallCtx, r: functions::account::UpdateProfile) -> Result<enums::User, RpcError> {
    let me = ctx.user()?;
    let u = s.accounts.update_profile(me, r.first_name.as_deref(), r.last_name.as_deref(), r.about.as_deref()).await?;
    Ok(convert::user(&s, me, &u))
}

pub async fn resolve_username(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::ResolveUsername) -> Result<enums::contacts::ResolvedPeer, RpcError> {
    let me = ctx.user()?;
    let u = match s.accounts.resolve_username(&r.username).await {
        Ok(u) => u,
        // Users and public channels share one name space.
        Err(DomainError::Account(AccountError::UsernameNotOccupied)) => {
            let Some(g) = s.groups.by_username(r.username.trim_start_matches('@')).await? else {
                return Err(DomainError::from(AccountError::UsernameNotOccupied).into());
            };
            let m = s.groups.member(g.id, me).await?;
            return Ok(enums::contacts::ResolvedPeer::Peer(types::contacts::ResolvedPeer {
                peer: convert::peer(g.peer()),
                chats: vec![convert::chat(&s, me, &g, m.as_ref())],
                users: vec![],
            }));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(enums::contacts::ResolvedPeer::Peer(types::contacts::ResolvedPeer {
        peer: convert::peer(herald_domain::model::Peer::User(u.id)),
        chats: vec![],
        users: convert::users(&s, me, [u.id]).await?,
    }))
}

/// `account.getAuthorizations`: the account's logged-in sessions, the current one first with
/// hash 0 (Telegram's convention) and `current` set.
pub async fn get_authorizations(s: Arc<Services>, ctx: CallCtx, _: functions::account::GetAuthorizations) -> Result<enums::account::Authorizations, RpcError> {
    let me = ctx.user()?;
    let now = s.clock.now_secs() as i32;
    let mut sessions = s.auth.sessions(me).await?;
    sessions.sort_by_key(|k| k.id != ctx.auth_key_id);
    let authorizations = sessions.iter().map(|k| session(&s, me, k, k.id == ctx.auth_key_id, now)).collect();
    Ok(enums::account::Authorizations::Authorizations(types::account::Authorizations { authorization_ttl_days: s.auth.session_ttl(me).await?, authorizations }))
}

/// One session of `me` as `account.getAuthorizations` lists it (the current one with hash 0).
pub(crate) fn session(
    s: &Services,
    me: herald_domain::model::UserId,
    k: &herald_domain::model::AuthKeyRecord,
    current: bool,
    now: i32,
) -> enums::Authorization {
    let client = k.client.clone().unwrap_or_default();
    enums::Authorization::Authorization(types::Authorization {
        current,
        official_app: false,
        password_pending: false,
        encrypted_requests_disabled: false,
        call_requests_disabled: false,
        unconfirmed: false,
        hash: if current { 0 } else { s.accounts.session_hash(me, k.id) },
        device_model: client.device_model.clone(),
        platform: String::new(),
        system_version: client.system_version.clone(),
        api_id: client.api_id,
        app_name: String::new(),
        app_version: client.app_version.clone(),
        date_created: k.created_at as i32,
        date_active: if current { now } else { k.last_used_at as i32 },
        ip: String::new(),
        country: String::new(),
        region: String::new(),
    })
}

/// `account.resetAuthorization`: ends one other session, named by its hash.
pub async fn reset_authorization(s: Arc<Services>, ctx: CallCtx, r: functions::account::ResetAuthorization) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let target = s.auth.sessions(me).await?.into_iter().map(|k| k.id).find(|id| *id != ctx.auth_key_id && s.accounts.session_hash(me, *id) == r.hash);
    let Some(target) = target else { return Err(DomainError::from(AccountError::HashInvalid).into()) };
    s.auth.end_session(me, ctx.auth_key_id, target).await?;
    Ok(true)
}

/// `auth.resetAuthorizations`: ends every other session of the account.
pub async fn reset_authorizations(s: Arc<Services>, ctx: CallCtx, _: functions::auth::ResetAuthorizations) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    s.auth.end_other_sessions(me, ctx.auth_key_id).await?;
    Ok(true)
}

/// The user an `InputPeer` of `contacts.block`/`unblock` names (only users can be blocked).
async fn blockable(s: &Services, me: herald_domain::model::UserId, p: &enums::InputPeer) -> Result<herald_domain::model::UserId, RpcError> {
    match convert::input_peer(s, me, p).await? {
        herald_domain::model::Peer::User(u) => Ok(u),
        _ => Err(DomainError::from(herald_domain::error::MessageError::ContactIdInvalid).into()),
    }
}

/// `contacts.block`: the user's private messages to the caller fail with `USER_IS_BLOCKED`.
pub async fn block(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::Block) -> Result<bool, RpcError> {
    set_blocked(&s, &ctx, &r.id, r.my_stories_from, true).await
}

pub async fn unblock(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::Unblock) -> Result<bool, RpcError> {
    set_blocked(&s, &ctx, &r.id, r.my_stories_from, false).await
}

async fn set_blocked(s: &Services, ctx: &CallCtx, id: &enums::InputPeer, my_stories_from: bool, blocked: bool) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    if my_stories_from {
        return Ok(true); // the "hide my stories from" list: there are no stories yet
    }
    let target = blockable(s, me, id).await?;
    s.messages.set_blocked(me, target, blocked).await?;
    Ok(true)
}

/// `contacts.getBlocked`: `contacts.blocked` when the page holds them all, else
/// `contacts.blockedSlice` with the total.
pub async fn get_blocked(s: Arc<Services>, ctx: CallCtx, r: functions::contacts::GetBlocked) -> Result<enums::contacts::Blocked, RpcError> {
    let me = ctx.user()?;
    if r.my_stories_from {
        return Ok(enums::contacts::Blocked::Blocked(types::contacts::Blocked { blocked: vec![], chats: vec![], users: vec![] }));
    }
    let (page, count) = s.messages.blocked(me, r.offset, r.limit).await?;
    let users = convert::users(&s, me, page.iter().map(|(u, _)| *u).collect::<Vec<_>>()).await?;
    let blocked: Vec<enums::PeerBlocked> = page
        .iter()
        .map(|(u, date)| enums::PeerBlocked::Blocked(types::PeerBlocked { peer_id: enums::Peer::User(types::PeerUser { user_id: u.0 }), date: *date }))
        .collect();
    Ok(if r.offset <= 0 && blocked.len() as i32 == count {
        enums::contacts::Blocked::Blocked(types::contacts::Blocked { blocked, chats: vec![], users })
    } else {
        enums::contacts::Blocked::Slice(types::contacts::BlockedSlice { count, blocked, chats: vec![], users })
    })
}

/// `account.updateStatus`: online for five minutes, or offline now (client-compat §4.15).
pub async fn update_status(s: Arc<Services>, ctx: CallCtx, r: functions::account::UpdateStatus) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    s.accounts.update_status(me, r.offline, s.messages.bus()).await?;
    Ok(true)
}

/// `account.setAuthorizationTTL`: the account's sessions end after this many days unused.
pub async fn set_authorization_ttl(s: Arc<Services>, ctx: CallCtx, r: functions::account::SetAuthorizationTtl) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    s.auth.set_session_ttl(me, r.authorization_ttl_days).await?;
    Ok(true)
}
