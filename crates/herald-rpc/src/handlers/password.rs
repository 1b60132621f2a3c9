//! Two-step verification (`herald_domain::password`): `account.getPassword` and the
//! settings calls, `auth.checkPassword` after SESSION_PASSWORD_NEEDED, and recovery by email.
//! Only Telegram's SRP algorithm over its own prime is offered and accepted
//! (docs/client-compat.md §3.3–3.4).

use super::auth::{authorization, requester};
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::error::AuthError;
use herald_domain::password::{NewPassword, NewSettings, PasswordInfo, Proof};
use herald_mtproto::dh;
use std::sync::Arc;

fn algo(salt1: Vec<u8>, salt2: Vec<u8>) -> enums::PasswordKdfAlgo {
    enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
        salt1,
        salt2,
        g: dh::G as i32,
        p: dh::prime_bytes().to_vec(),
    })
}

fn password(info: PasswordInfo) -> enums::account::Password {
    let (current_algo, srp_b, srp_id) = match info.current {
        Some(c) => (Some(algo(c.salt1, c.salt2)), Some(c.big_b), Some(c.srp_id)),
        None => (None, None, None),
    };
    enums::account::Password::Password(types::account::Password {
        has_recovery: info.has_recovery,
        has_secure_values: false,
        has_password: current_algo.is_some(),
        current_algo,
        srp_b,
        srp_id,
        hint: Some(info.hint).filter(|h| !h.is_empty()),
        email_unconfirmed_pattern: info.email_unconfirmed_pattern,
        new_algo: algo(info.new_salt1, info.new_salt2),
        new_secure_algo: enums::SecurePasswordKdfAlgo::Pbkdf2Hmacsha512iter100000(types::SecurePasswordKdfAlgoPbkdf2Hmacsha512iter100000 {
            salt: info.secure_random[..8].to_vec(),
        }),
        secure_random: info.secure_random,
        pending_reset_date: None,
        login_email_pattern: None,
    })
}

fn refused(e: AuthError) -> RpcError {
    herald_domain::DomainError::from(e).into()
}

fn proof(p: enums::InputCheckPasswordSrp) -> Option<Proof> {
    match p {
        enums::InputCheckPasswordSrp::InputCheckPasswordEmpty => None,
        enums::InputCheckPasswordSrp::Srp(s) => Some(Proof { srp_id: s.srp_id, a: s.a, m1: s.m1 }),
    }
}

/// A new password must use Telegram's algorithm with its prime and g = 3: the one clients
/// can check quickly, and the one the SRP check here computes with.
fn new_password(algo: Option<enums::PasswordKdfAlgo>, hash: Option<Vec<u8>>) -> Result<Option<Option<NewPassword>>, RpcError> {
    match (algo, hash) {
        (None, _) => Ok(None),
        (Some(_), None) => Err(refused(AuthError::NewSettingsInvalid)),
        (Some(_), Some(h)) if h.is_empty() => Ok(Some(None)),
        (Some(enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(a)), Some(h)) => {
            if a.g != dh::G as i32 || herald_mtproto::rsa::minimal_be(&a.p) != dh::prime_bytes() {
                return Err(refused(AuthError::NewSettingsInvalid));
            }
            Ok(Some(Some(NewPassword { salt1: a.salt1, salt2: a.salt2, verifier: h })))
        }
        (Some(enums::PasswordKdfAlgo::Unknown), Some(_)) => Ok(Some(None)),
    }
}

fn settings(s: enums::account::PasswordInputSettings) -> Result<NewSettings, RpcError> {
    let enums::account::PasswordInputSettings::Settings(s) = s;
    Ok(NewSettings { password: new_password(s.new_algo, s.new_password_hash)?, hint: s.hint, email: s.email })
}

pub async fn get_password(s: Arc<Services>, ctx: CallCtx, _: functions::account::GetPassword) -> Result<enums::account::Password, RpcError> {
    let user = s.auth.password_user(&requester(&ctx), ctx.key.user()).await?;
    Ok(password(s.auth.password_info(user).await?))
}

pub async fn check_password(s: Arc<Services>, ctx: CallCtx, r: functions::auth::CheckPassword) -> Result<enums::auth::Authorization, RpcError> {
    let proof = proof(r.password).ok_or_else(|| refused(AuthError::PasswordHashInvalid))?;
    let user = s.auth.check_password(&requester(&ctx), &proof).await?;
    Ok(authorization(&s, &ctx, &user))
}

pub async fn get_password_settings(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::account::GetPasswordSettings,
) -> Result<enums::account::PasswordSettings, RpcError> {
    let email = s.auth.password_settings(&requester(&ctx), ctx.user()?, proof(r.password).as_ref()).await?;
    Ok(enums::account::PasswordSettings::Settings(types::account::PasswordSettings { email, secure_settings: None }))
}

pub async fn update_password_settings(s: Arc<Services>, ctx: CallCtx, r: functions::account::UpdatePasswordSettings) -> Result<bool, RpcError> {
    let new = settings(r.new_settings)?;
    s.auth.update_password(&requester(&ctx), ctx.user()?, proof(r.password).as_ref(), new).await?;
    Ok(true)
}

pub async fn confirm_password_email(s: Arc<Services>, ctx: CallCtx, r: functions::account::ConfirmPasswordEmail) -> Result<bool, RpcError> {
    s.auth.confirm_email(&requester(&ctx), ctx.user()?, &r.code).await?;
    Ok(true)
}

pub async fn resend_password_email(s: Arc<Services>, ctx: CallCtx, _: functions::account::ResendPasswordEmail) -> Result<bool, RpcError> {
    s.auth.resend_email(ctx.user()?).await?;
    Ok(true)
}

pub async fn cancel_password_email(s: Arc<Services>, ctx: CallCtx, _: functions::account::CancelPasswordEmail) -> Result<bool, RpcError> {
    s.auth.cancel_email(ctx.user()?).await?;
    Ok(true)
}

pub async fn request_password_recovery(
    s: Arc<Services>,
    ctx: CallCtx,
    _: functions::auth::RequestPasswordRecovery,
) -> Result<enums::auth::PasswordRecovery, RpcError> {
    let user = s.auth.password_user(&requester(&ctx), ctx.key.user()).await?;
    let email_pattern = s.auth.request_recovery(user).await?;
    Ok(enums::auth::PasswordRecovery::Recovery(types::auth::PasswordRecovery { email_pattern }))
}

pub async fn check_recovery_password(s: Arc<Services>, ctx: CallCtx, r: functions::auth::CheckRecoveryPassword) -> Result<bool, RpcError> {
    let user = s.auth.password_user(&requester(&ctx), ctx.key.user()).await?;
    s.auth.check_recovery_code(&requester(&ctx), user, &r.code).await?;
    Ok(true)
}

pub async fn recover_password(s: Arc<Services>, ctx: CallCtx, r: functions::auth::RecoverPassword) -> Result<enums::auth::Authorization, RpcError> {
    let user = s.auth.password_user(&requester(&ctx), ctx.key.user()).await?;
    let new = match r.new_settings.map(settings).transpose()? {
        Some(NewSettings { password: Some(p), .. }) => p,
        _ => None,
    };
    let user = s.auth.recover(&requester(&ctx), user, &r.code, new).await?;
    Ok(authorization(&s, &ctx, &user))
}

/// `account.deleteAccount`: at once, with the password when the account has one.
pub async fn delete_account(s: Arc<Services>, ctx: CallCtx, r: functions::account::DeleteAccount) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let proof = r.password.and_then(proof);
    s.auth.delete_account(&requester(&ctx), me, proof.as_ref()).await?;
    ctx.key.set_user(None);
    Ok(true)
}

pub async fn set_account_ttl(s: Arc<Services>, ctx: CallCtx, r: functions::account::SetAccountTtl) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let enums::AccountDaysTtl::Ttl(t) = r.ttl;
    s.auth.set_account_ttl(me, t.days).await?;
    Ok(true)
}

pub async fn set_default_history_ttl(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SetDefaultHistoryTtl) -> Result<bool, RpcError> {
    s.accounts.set_default_history_ttl(ctx.user()?, r.period).await?;
    Ok(true)
}

pub async fn get_default_history_ttl(
    s: Arc<Services>,
    ctx: CallCtx,
    _: functions::messages::GetDefaultHistoryTtl,
) -> Result<enums::DefaultHistoryTtl, RpcError> {
    let period = s.accounts.default_history_ttl(ctx.user()?).await?;
    Ok(enums::DefaultHistoryTtl::Ttl(types::DefaultHistoryTtl { period }))
}

pub async fn get_account_ttl(s: Arc<Services>, ctx: CallCtx, _: functions::account::GetAccountTtl) -> Result<enums::AccountDaysTtl, RpcError> {
    let me = ctx.user()?;
    let days = s.accounts.user(me).await?.map(|u| u.account_ttl_days).unwrap_or(365);
    Ok(enums::AccountDaysTtl::Ttl(types::AccountDaysTtl { days }))
}
