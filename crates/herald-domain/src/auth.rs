//! Login: codes, sign-in, sign-up, log-out, and binding auth keys to accounts.

use crate::bus::{Event, EventBus};
use crate::clock::{random_u64, Clock};
use crate::error::{AuthError, Result, StoreError};
use crate::messages::MessageService;
use crate::model::*;
use crate::store::{AccountStore, AuthKeyStore, LoginCodeStore};
use std::sync::Arc;

pub const CODE_LENGTH: usize = 5;
/// A login code lives this long (Telegram's codes last a few minutes).
pub const CODE_TTL_SECS: i64 = 300;
/// Wrong tries before a code is burnt (security.md S9).
pub const CODE_MAX_ATTEMPTS: i32 = 5;
/// At most this many codes (sends and resends) per phone per hour, then FLOOD_WAIT (S9).
pub const CODES_PER_HOUR: usize = 5;
/// At most this many wrong codes per phone per day, then FLOOD_WAIT: with 5-digit codes the
/// chance of guessing one is at most 20 in 100 000 per day (security.md S9).
pub const FAILURES_PER_DAY: usize = 20;

#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub dc_id: i32,
    /// Accept Telegram's test numbers 99966XYYYY with the code XXXXX.
    pub test_phones: bool,
}

pub struct AuthService {
    accounts: Arc<dyn AccountStore>,
    codes: Arc<dyn LoginCodeStore>,
    keys: Arc<dyn AuthKeyStore>,
    messages: Arc<MessageService>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentCode {
    pub hash: String,
    pub length: i32,
    pub timeout: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignIn {
    Authorized(User),
    SignUpRequired,
}

/// Strips `+ ( ) - space` and requires 5 to 15 digits after that.
pub fn normalize_phone(phone: &str) -> Result<String, AuthError> {
    let p: String = phone.chars().filter(|c| !matches!(c, '+' | '(' | ')' | '-' | ' ')).collect();
    if (5..=15).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) {
        Ok(p)
    } else {
        Err(AuthError::PhoneNumberInvalid)
    }
}

/// Telegram's test numbers: 99966XYYYY logs in with X repeated five times.
pub fn test_phone_code(phone: &str) -> Option<String> {
    let b = phone.as_bytes();
    (phone.len() == 10 && phone.starts_with("99966") && b[5].is_ascii_digit() && b[5] != b'0')
        .then(|| std::iter::repeat_n(b[5] as char, CODE_LENGTH).collect())
}

impl AuthService {
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        codes: Arc<dyn LoginCodeStore>,
        keys: Arc<dyn AuthKeyStore>,
        messages: Arc<MessageService>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        config: AuthConfig,
    ) -> Self {
        Self { accounts, codes, keys, messages, bus, clock, config }
    }

    fn new_code(&self, phone: &str) -> String {
        if self.config.test_phones {
            if let Some(code) = test_phone_code(phone) {
                return code;
            }
        }
        format!("{:05}", random_u64() % 100_000)
    }

    async fn deliver(&self, phone: &str, code: &LoginCode) -> Result<()> {
        tracing::info!(phone, code = %code.code, "login code issued");
        if let Some(user) = self.accounts.user_by_phone(phone).await? {
            let text = format!(
                "Login code: {}. Do not give this code to anyone, even if they say they are from Herald!\n\nThis code can be used to log in to your account. We never ask it for anything else.",
                code.code
            );
            self.messages.send_service_message(user.id, text).await?;
        }
        Ok(())
    }

    pub async fn send_code(&self, phone: &str) -> Result<SentCode> {
        let phone = normalize_phone(phone)?;
        let now = self.clock.now_secs();
        let recent = self.codes.codes_since(&phone, now - 3600).await?;
        if recent.len() >= CODES_PER_HOUR {
            let oldest = recent.iter().min().copied().unwrap_or(now);
            return Err(AuthError::FloodWait((oldest + 3600 - now).max(1)).into());
        }
        let code = LoginCode {
            phone: phone.clone(),
            hash: format!("{:016x}", random_u64()),
            code: self.new_code(&phone),
            created_at: now,
            expires_at: now + CODE_TTL_SECS,
            attempts: 0,
            verified: false,
        };
        self.codes.put_code(code.clone()).await?;
        self.deliver(&phone, &code).await?;
        Ok(SentCode { hash: code.hash, length: CODE_LENGTH as i32, timeout: CODE_TTL_SECS as i32 })
    }

    async fn live_code(&self, phone: &str, hash: &str) -> Result<LoginCode> {
        if hash.is_empty() {
            return Err(AuthError::PhoneCodeHashEmpty.into());
        }
        let code = self.codes.get_code(phone, hash).await?.ok_or(AuthError::PhoneCodeExpired)?;
        if code.expires_at <= self.clock.now_secs() || code.attempts >= CODE_MAX_ATTEMPTS {
            self.codes.delete_code(phone, hash).await?;
            return Err(AuthError::PhoneCodeExpired.into());
        }
        Ok(code)
    }

    /// `auth.resendCode`: a fresh code under a new hash (the old one dies), counted against
    /// the hourly limit like any other code.
    pub async fn resend_code(&self, phone: &str, hash: &str) -> Result<SentCode> {
        let phone = normalize_phone(phone)?;
        self.live_code(&phone, hash).await?;
        let sent = self.send_code(&phone).await?;
        self.codes.delete_code(&phone, hash).await?;
        Ok(sent)
    }

    pub async fn cancel_code(&self, phone: &str, hash: &str) -> Result<()> {
        let phone = normalize_phone(phone)?;
        self.codes.delete_code(&phone, hash).await?;
        Ok(())
    }

    pub async fn sign_in(&self, auth_key_id: i64, phone: &str, hash: &str, code: &str) -> Result<SignIn> {
        let phone = normalize_phone(phone)?;
        if hash.is_empty() {
            return Err(AuthError::PhoneCodeHashEmpty.into());
        }
        if code.is_empty() {
            return Err(AuthError::PhoneCodeEmpty.into());
        }
        let now = self.clock.now_secs();
        let failures = self.codes.failures_since(&phone, now - 86_400).await?;
        if failures.len() >= FAILURES_PER_DAY {
            let oldest = failures.iter().min().copied().unwrap_or(now);
            return Err(AuthError::FloodWait((oldest + 86_400 - now).max(1)).into());
        }
        // One attempt is spent before comparing, atomically: parallel guesses cannot get
        // more tries than CODE_MAX_ATTEMPTS between them.
        let Some(mut stored) = self.codes.take_attempt(&phone, hash, now, CODE_MAX_ATTEMPTS).await? else {
            return Err(AuthError::PhoneCodeExpired.into());
        };
        if !constant_time_eq(stored.code.as_bytes(), code.as_bytes()) {
            self.codes.record_failure(&phone, now).await?;
            return Err(AuthError::PhoneCodeInvalid.into());
        }
        match self.accounts.user_by_phone(&phone).await? {
            Some(user) => {
                self.codes.delete_code(&phone, hash).await?;
                self.keys.bind_user(auth_key_id, Some(user.id)).await?;
                Ok(SignIn::Authorized(user))
            }
            None => {
                stored.verified = true;
                self.codes.update_code(&stored).await?;
                Ok(SignIn::SignUpRequired)
            }
        }
    }

    pub async fn sign_up(&self, auth_key_id: i64, phone: &str, hash: &str, first: &str, last: &str) -> Result<User> {
        let phone = normalize_phone(phone)?;
        let stored = self.live_code(&phone, hash).await?;
        if !stored.verified {
            return Err(AuthError::PhoneCodeInvalid.into());
        }
        let first = first.trim();
        if first.is_empty() || first.chars().count() > crate::accounts::NAME_MAX {
            return Err(AuthError::FirstNameInvalid.into());
        }
        let new = NewUser {
            phone: phone.clone(),
            first_name: first.to_string(),
            last_name: last.trim().chars().take(crate::accounts::NAME_MAX).collect(),
            home_dc: self.config.dc_id,
            created_at: self.clock.now_secs(),
        };
        let user = match self.accounts.create_user(new).await {
            Err(StoreError::Conflict(_)) => return Err(AuthError::PhoneNumberOccupied.into()),
            other => other?,
        };
        self.codes.delete_code(&phone, hash).await?;
        self.keys.bind_user(auth_key_id, Some(user.id)).await?;
        Ok(user)
    }

    pub async fn log_out(&self, auth_key_id: i64, user: UserId) -> Result<()> {
        self.keys.bind_user(auth_key_id, None).await?;
        self.bus.publish(Event::KeyUnbound { user, auth_key_id });
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_test_codes() {
        assert_eq!(normalize_phone("+1 (555) 123-4567").unwrap(), "15551234567");
        assert_eq!(normalize_phone("12ab5"), Err(AuthError::PhoneNumberInvalid));
        assert_eq!(normalize_phone("1234"), Err(AuthError::PhoneNumberInvalid));
        assert_eq!(test_phone_code("9996612345").as_deref(), Some("11111"));
        assert_eq!(test_phone_code("9996698765").as_deref(), Some("99999"));
        assert_eq!(test_phone_code("9996601234"), None);
        assert_eq!(test_phone_code("99966123456"), None);
        assert_eq!(test_phone_code("9996512345"), None);
    }
}
