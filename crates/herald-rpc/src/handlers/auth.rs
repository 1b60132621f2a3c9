use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
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
