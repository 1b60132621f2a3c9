use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types, Deserializable};
use herald_domain::auth::{Requester, SentCode, SignIn};
use herald_domain::model::User;
use herald_domain::qr::Exported;
use std::sync::Arc;

fn sent_code(c: SentCode) -> enums::auth::SentCode {
    enums::auth::SentCode::Code(types::auth::SentCode {
        r#type: enums::auth::SentCodeType::App(types::auth::SentCodeTypeApp { length: c.length }),
        phone_code_hash: c.hash,
        next_type: None,
        timeout: Some(c.timeout),
    })
}

pub(super) fn authorization(s: &Services, ctx: &CallCtx, u: &User) -> enums::auth::Authorization {
    ctx.key.set_user(Some(u.id));
    tracing::info!(user = u.id.0, auth_key = format_args!("{:016x}", ctx.auth_key_id), "logged in");
    enums::auth::Authorization::Authorization(types::auth::Authorization {
        setup_password_required: false,
        otherwise_relogin_days: None,
        tmp_sessions: None,
        future_auth_token: None,
        user: convert::user(s, u.id, u),
    })
}

pub(super) fn requester(ctx: &CallCtx) -> Requester {
    Requester::new(ctx.auth_key_id, ctx.peer)
}

pub async fn send_code(s: Arc<Services>, ctx: CallCtx, r: functions::auth::SendCode) -> Result<enums::auth::SentCode, RpcError> {
    Ok(sent_code(s.auth.send_code(&requester(&ctx), &r.phone_number).await?))
}

pub async fn resend_code(s: Arc<Services>, ctx: CallCtx, r: functions::auth::ResendCode) -> Result<enums::auth::SentCode, RpcError> {
    Ok(sent_code(s.auth.resend_code(&requester(&ctx), &r.phone_number, &r.phone_code_hash).await?))
}

pub async fn cancel_code(s: Arc<Services>, ctx: CallCtx, r: functions::auth::CancelCode) -> Result<bool, RpcError> {
    s.auth.cancel_code(&requester(&ctx), &r.phone_number, &r.phone_code_hash).await?;
    Ok(true)
}

pub async fn sign_in(s: Arc<Services>, ctx: CallCtx, r: functions::auth::SignIn) -> Result<enums::auth::Authorization, RpcError> {
    let code = r.phone_code.unwrap_or_default();
    match s.auth.sign_in(&requester(&ctx), &r.phone_number, &r.phone_code_hash, &code).await? {
        SignIn::Authorized(u) => Ok(authorization(&s, &ctx, &u)),
        SignIn::SignUpRequired => Ok(enums::auth::Authorization::SignUpRequired(types::auth::AuthorizationSignUpRequired { terms_of_service: None })),
    }
}

pub async fn sign_up(s: Arc<Services>, ctx: CallCtx, r: functions::auth::SignUp) -> Result<enums::auth::Authorization, RpcError> {
    let u = s.auth.sign_up(&requester(&ctx), &r.phone_number, &r.phone_code_hash, &r.first_name, &r.last_name).await?;
    Ok(authorization(&s, &ctx, &u))
}

pub async fn log_out(s: Arc<Services>, ctx: CallCtx, _: functions::auth::LogOut) -> Result<enums::auth::LoggedOut, RpcError> {
    let me = ctx.user()?;
    s.auth.log_out(ctx.auth_key_id, me).await?;
    ctx.key.set_user(None);
    Ok(enums::auth::LoggedOut::Out(types::auth::LoggedOut { future_auth_token: None }))
}

/// `auth.exportLoginToken` (QR login): a token to show, or the login once a session of the
/// account accepted it (client-compat §4.16).
pub async fn export_login_token(s: Arc<Services>, ctx: CallCtx, _: functions::auth::ExportLoginToken) -> Result<enums::auth::LoginToken, RpcError> {
    login_token_answer(&s, &ctx).await
}

/// `auth.importLoginToken`: there is one DC, so a token is collected where it was exported.
pub async fn import_login_token(s: Arc<Services>, ctx: CallCtx, _: functions::auth::ImportLoginToken) -> Result<enums::auth::LoginToken, RpcError> {
    login_token_answer(&s, &ctx).await
}

async fn login_token_answer(s: &Services, ctx: &CallCtx) -> Result<enums::auth::LoginToken, RpcError> {
    Ok(match s.auth.export_login_token(&requester(ctx)).await? {
        Exported::Token { token, expires } => enums::auth::LoginToken::Token(types::auth::LoginToken { expires: expires as i32, token }),
        Exported::LoggedIn(u) => enums::auth::LoginToken::Success(types::auth::LoginTokenSuccess { authorization: authorization(s, ctx, &u) }),
    })
}

/// `auth.acceptLoginToken`: lets the key that shows this token in as the caller; its
/// connections get `updateLoginToken`. Answers that session as `getAuthorizations` lists it.
pub async fn accept_login_token(s: Arc<Services>, ctx: CallCtx, r: functions::auth::AcceptLoginToken) -> Result<enums::Authorization, RpcError> {
    let me = ctx.user()?;
    let key = s.auth.accept_login_token(me, &r.token)?;
    if let Some(state) = s.key_states.get(key) {
        state.login_token_accepted();
    }
    let now = s.clock.now_secs() as i32;
    let record = s.keys.get_key(key).await.map_err(herald_domain::DomainError::from)?.ok_or_else(RpcError::internal)?;
    Ok(super::account::session(&s, me, &record, false, now))
}

/// `auth.bindTempAuthKey` (perfect forward secrecy, client-compat §2.3): the temporary key
/// this request came with is bound to a permanent key, after checking the inner message the
/// permanent key encrypted (MTProto 1.0) against this very request: its msg_id, this key, this
/// session, the nonce and the expiry. From then on the temporary key acts as the permanent one.
pub async fn bind_temp_auth_key(s: Arc<Services>, ctx: CallCtx, r: functions::auth::BindTempAuthKey) -> Result<bool, RpcError> {
    let invalid = || RpcError::bad_request("ENCRYPTED_MESSAGE_INVALID");
    let store = |e: herald_domain::error::StoreError| RpcError::from(herald_domain::DomainError::from(e));
    let temp = s.keys.get_key(ctx.crypto_key_id).await.map_err(store)?.ok_or_else(invalid)?;
    if temp.expires_at.is_none() {
        return Err(RpcError::bad_request("TEMP_AUTH_KEY_EMPTY"));
    }
    if temp.perm_key_id.is_some() {
        return Err(RpcError::bad_request("TEMP_AUTH_KEY_ALREADY_BOUND"));
    }
    let perm = s.keys.get_key(r.perm_auth_key_id).await.map_err(store)?.filter(|p| p.expires_at.is_none()).ok_or_else(invalid)?;
    let bytes: [u8; 256] = perm.key.as_slice().try_into().map_err(|_| invalid())?;
    let (msg_id, data) =
        herald_mtproto::crypto::open_bind_message(&herald_mtproto::crypto::AuthKey::from_bytes(bytes), &r.encrypted_message).ok_or_else(invalid)?;
    let enums::BindAuthKeyInner::Inner(inner) = enums::BindAuthKeyInner::from_bytes(&data).map_err(|_| invalid())?;
    let matches = msg_id == ctx.msg_id
        && inner.nonce == r.nonce
        && inner.temp_auth_key_id == ctx.crypto_key_id
        && inner.perm_auth_key_id == r.perm_auth_key_id
        && inner.temp_session_id == ctx.session_id
        && inner.expires_at == r.expires_at;
    if !matches || !s.keys.bind_temp(ctx.crypto_key_id, r.perm_auth_key_id).await.map_err(store)? {
        return Err(invalid());
    }
    ctx.key.set_bound_to(r.perm_auth_key_id);
    tracing::debug!(temp = format_args!("{:016x}", ctx.crypto_key_id), perm = format_args!("{:016x}", r.perm_auth_key_id), "temporary key bound");
    Ok(true)
}

/// `auth.dropTempAuthKeys`: forgets the temporary keys bound to the caller's permanent key,
/// but those listed.
pub async fn drop_temp_auth_keys(s: Arc<Services>, ctx: CallCtx, r: functions::auth::DropTempAuthKeys) -> Result<bool, RpcError> {
    let except: Vec<i64> = r.except_auth_keys.into_iter().take(1000).collect();
    let dropped = s.keys.drop_temp_keys(ctx.auth_key_id, &except).await.map_err(|e| RpcError::from(herald_domain::DomainError::from(e)))?;
    // Connections open on them are cut too (-404 at their next message).
    for id in dropped {
        s.key_states.revoke(id);
    }
    Ok(true)
}
