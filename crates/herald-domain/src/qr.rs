//! Login by QR code (docs/client-compat.md §4.16): a key that is not logged in exports a
//! short-lived token (shown as `tg://login?token=…`); a logged-in session of the account
//! accepts it; the waiting key is told (`updateLoginToken`) and exports again to receive the
//! authorization. Tokens live in this process's memory: a key and its accepting session must
//! reach the same gateway (one process today).

use crate::auth::{AuthService, Requester};
use crate::error::{AuthError, Result};
use crate::model::*;
use std::collections::HashMap;

/// How long a token may be accepted (Telegram's clients re-export every 30 s).
pub const LOGIN_TOKEN_TTL_SECS: i64 = 30;
/// Live tokens kept at most; past it the oldest go.
pub const LOGIN_TOKENS_MAX: usize = 10_000;

#[derive(Clone, Debug)]
struct Token {
    auth_key_id: i64,
    expires: i64,
    accepted_by: Option<UserId>,
}

/// The tokens keys exported, by token bytes.
#[derive(Default)]
pub(crate) struct LoginTokens(std::sync::Mutex<HashMap<Vec<u8>, Token>>);

pub enum Exported {
    /// Show this token; it expires at `expires`.
    Token { token: Vec<u8>, expires: i64 },
    /// A session accepted the key's token: it is logged in as this user now.
    LoggedIn(User),
}

impl AuthService {
    /// `auth.exportLoginToken`: the key's new token, or its login when one was accepted
    /// (`SESSION_PASSWORD_NEEDED` first when the account has a password, as at a code login).
    pub async fn export_login_token(&self, who: &Requester) -> Result<Exported> {
        let now = self.clock.now_secs();
        let accepted = {
            let mut map = self.login_tokens.0.lock().expect("token lock");
            let found = map.iter().find(|(_, t)| t.auth_key_id == who.auth_key_id && t.accepted_by.is_some()).map(|(k, t)| (k.clone(), t.accepted_by));
            if let Some((k, _)) = &found {
                map.remove(k);
            }
            found.and_then(|(_, u)| u)
        };
        if let Some(user) = accepted {
            let user = self.accounts.user_by_id(user).await?.ok_or(AuthError::Unregistered)?;
            if self.passwords.password(user.id).await?.is_some() {
                self.park_for_password(who, user.id).await?;
                return Err(AuthError::SessionPasswordNeeded.into());
            }
            self.bind(who.auth_key_id, user.id).await?;
            self.announce_login(&user, who.auth_key_id, now).await;
            return Ok(Exported::LoggedIn(user));
        }
        let mut token = vec![0u8; 32];
        getrandom::fill(&mut token).expect("the operating system RNG failed");
        let expires = now + LOGIN_TOKEN_TTL_SECS;
        let mut map = self.login_tokens.0.lock().expect("token lock");
        // One live token per key, and a bounded map.
        map.retain(|_, t| t.auth_key_id != who.auth_key_id && (t.expires > now || (t.accepted_by.is_some() && t.expires + 300 > now)));
        if map.len() >= LOGIN_TOKENS_MAX {
            if let Some(oldest) = map.iter().min_by_key(|(_, t)| t.expires).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), Token { auth_key_id: who.auth_key_id, expires, accepted_by: None });
        Ok(Exported::Token { token, expires })
    }

    /// `auth.acceptLoginToken`: `user` (logged in elsewhere) lets the key that showed `token`
    /// in. Returns that key's id (its connections are then told).
    pub fn accept_login_token(&self, user: UserId, token: &[u8]) -> Result<i64> {
        let now = self.clock.now_secs();
        let mut map = self.login_tokens.0.lock().expect("token lock");
        let t = map.get_mut(token).ok_or(AuthError::AuthTokenInvalid)?;
        if t.accepted_by.is_some() {
            return Err(AuthError::AuthTokenAlreadyAccepted.into());
        }
        if t.expires <= now {
            return Err(AuthError::AuthTokenExpired.into());
        }
        t.accepted_by = Some(user);
        Ok(t.auth_key_id)
    }
}
