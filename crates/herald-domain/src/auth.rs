//! Login: codes, sign-in, sign-up, log-out, and binding auth keys to accounts.

use crate::bus::{Event, EventBus};
use crate::clock::{random_u64, Clock};
use crate::error::{AccountError, AuthError, Result, StoreError};
use crate::limits::{Bucket, FloodTable, Limiter};
use crate::messages::MessageService;
use crate::model::*;
use crate::store::{AccountStore, AuthKeyStore, LoginCodeStore, LoginScope, PasswordStore};
use std::sync::Arc;

pub const CODE_LENGTH: usize = 5;
/// A login code lives this long (Telegram's codes last a few minutes).
pub const CODE_TTL_SECS: i64 = 300;
/// Wrong tries before a code is burnt (security.md §3.5).
pub const CODE_MAX_ATTEMPTS: i32 = 5;
/// At most this many codes (sends and resends) per phone *and source address* per hour,
/// then FLOOD_WAIT (security.md §3.5). Counting per address means a stranger asking for codes for your
/// number does not stop you from asking for one.
pub const CODES_PER_HOUR: usize = 5;
/// At most this many codes per source address per hour across all numbers (test numbers
/// under `--test-phones` excepted), so one address cannot fill the store with code rows.
pub const CODES_PER_ADDR_HOUR: usize = 60;
/// Wrong codes per day per (phone, address) and per (phone, auth key), then FLOOD_WAIT:
/// with 5-digit codes the chance of guessing is at most 20 in 100 000 per address per day.
pub const FAILURES_PER_DAY: usize = 20;
/// Wrong codes per phone per day from everywhere after which every address or key that has
/// failed for that phone today is refused outright; one that has not (the owner) still gets
/// in with the right code.
pub const FAILURES_PER_PHONE_DAY: usize = 200;
/// Code and failure rows are kept this long (the longest window a limit looks at).
pub const LOGIN_ROWS_TTL_SECS: i64 = 86_400;

#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub dc_id: i32,
    /// Accept Telegram's test numbers 99966XYYYY with the code XXXXX.
    pub test_phones: bool,
    /// Write issued login codes to the log (development only; implied by `test_phones`).
    pub log_codes: bool,
}

/// Where a code goes: a login code to a phone number, a password code to an email address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeTo<'a> {
    Phone(&'a str),
    Email(&'a str),
}

/// Delivers codes outside Herald (an SMS or mail gateway), besides the message from 777000.
pub trait CodeHook: Send + Sync {
    /// Called once per issued code; must not block (run the delivery in the background).
    fn deliver(&self, to: CodeTo<'_>, code: &str);
}

/// Who is asking: the auth key and the network address of the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    pub auth_key_id: i64,
    pub addr: String,
}

impl Requester {
    pub fn new(auth_key_id: i64, addr: impl ToString) -> Self {
        Self { auth_key_id, addr: addr.to_string() }
    }
}

pub struct AuthService {
    pub(crate) accounts: Arc<dyn AccountStore>,
    pub(crate) codes: Arc<dyn LoginCodeStore>,
    keys: Arc<dyn AuthKeyStore>,
    pub(crate) passwords: Arc<dyn PasswordStore>,
    messages: Arc<MessageService>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: AuthConfig,
    pub(crate) hook: Option<Arc<dyn CodeHook>>,
    pub(crate) login_tokens: crate::qr::LoginTokens,
    /// Emails with password codes per account (the `email_codes` flood row).
    pub(crate) email_codes: Limiter<UserId>,
    /// The per-address code limit, kept in memory as well so that a flood of `sendCode` is
    /// refused before it costs a database read (the stored rows stay the record).
    code_requests: Limiter<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentCode {
    pub hash: String,
    pub length: i32,
    pub timeout: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // once per login; boxing buys nothing
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
    (phone.len() == 10 && phone.starts_with("99966") && b[5].is_ascii_digit() && b[5] != b'0').then(|| std::iter::repeat_n(b[5] as char, CODE_LENGTH).collect())
}

/// A FLOOD_WAIT until the oldest of `times` leaves a window of `window` seconds.
fn wait_until_oldest_expires(times: &[i64], window: i64, now: i64) -> AuthError {
    let oldest = times.iter().min().copied().unwrap_or(now);
    AuthError::FloodWait((oldest + window - now).max(1))
}

/// Validates a name given at sign-up or in a profile: cleaned (`text::clean_name`), first
/// name 1–64 characters with something visible, last name at most 64.
pub fn validate_names(first: &str, last: &str) -> Result<(String, String), AuthError> {
    let (first, last) = (crate::text::clean_name(first), crate::text::clean_name(last));
    if !crate::text::has_visible(&first) || first.chars().count() > crate::accounts::NAME_MAX {
        return Err(AuthError::FirstNameInvalid);
    }
    if last.chars().count() > crate::accounts::NAME_MAX {
        return Err(AuthError::LastNameInvalid);
    }
    // A last name of invisible characters only is no last name.
    let last = if crate::text::has_visible(&last) { last } else { String::new() };
    Ok((first, last))
}

/// The stores login works with.
pub struct AuthStores {
    pub accounts: Arc<dyn AccountStore>,
    pub codes: Arc<dyn LoginCodeStore>,
    pub keys: Arc<dyn AuthKeyStore>,
    pub passwords: Arc<dyn PasswordStore>,
}

impl AuthService {
    pub fn new(stores: AuthStores, messages: Arc<MessageService>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>, config: AuthConfig) -> Self {
        let AuthStores { accounts, codes, keys, passwords } = stores;
        let code_requests = Limiter::new(Bucket { burst: CODES_PER_ADDR_HOUR as f64, per_sec: CODES_PER_ADDR_HOUR as f64 / 3600.0 });
        Self {
            accounts,
            codes,
            keys,
            passwords,
            messages,
            bus,
            clock,
            config,
            hook: None,
            login_tokens: Default::default(),
            email_codes: Limiter::new(FloodTable::default().email_codes),
            code_requests,
        }
    }

    /// With the `email_codes` row of `limits`.
    pub fn with_limits(mut self, limits: &FloodTable) -> Self {
        self.email_codes = Limiter::new(limits.email_codes);
        self
    }

    /// Also hands every issued code to `hook` (an SMS gateway).
    pub fn with_hook(mut self, hook: Arc<dyn CodeHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    fn is_test_phone(&self, phone: &str) -> bool {
        self.config.test_phones && test_phone_code(phone).is_some()
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
        if self.config.log_codes || self.config.test_phones {
            tracing::info!(phone, code = %code.code, "login code issued");
        } else {
            tracing::debug!(phone, "login code issued");
        }
        if let Some(hook) = &self.hook {
            hook.deliver(CodeTo::Phone(phone), &code.code);
        }
        if let Some(user) = self.accounts.user_by_phone(phone).await? {
            let text = format!(
                "Login code: {}. Do not give this code to anyone, even if they say they are from Herald!\n\nThis code can be used to log in to your account. We never ask it for anything else.",
                code.code
            );
            self.messages.send_service_message(user.id, text).await?;
        }
        Ok(())
    }

    /// The normalized number, refused when nobody may log in with it: the service
    /// accounts' (777000 and later system accounts) are answered as invalid numbers.
    async fn login_phone(&self, phone: &str) -> Result<String> {
        let phone = normalize_phone(phone)?;
        self.refuse_service(&phone).await?;
        Ok(phone)
    }

    async fn refuse_service(&self, phone: &str) -> Result<()> {
        if self.accounts.user_by_phone(phone).await?.is_some_and(|u| u.is_service) {
            return Err(AuthError::PhoneNumberInvalid.into());
        }
        Ok(())
    }

    pub async fn send_code(&self, who: &Requester, phone: &str) -> Result<SentCode> {
        let phone = normalize_phone(phone)?;
        if !self.is_test_phone(&phone) {
            self.code_requests.take(who.addr.clone(), 1.0, self.clock.now_ms()).map_err(AuthError::FloodWait)?;
        }
        self.refuse_service(&phone).await?;
        let now = self.clock.now_secs();
        let mine = self.codes.codes_since(LoginScope::PhoneAddr(&phone, &who.addr), now - 3600).await?;
        if mine.len() >= CODES_PER_HOUR {
            return Err(wait_until_oldest_expires(&mine, 3600, now).into());
        }
        if !self.is_test_phone(&phone) {
            let from_addr = self.codes.codes_since(LoginScope::Addr(&who.addr), now - 3600).await?;
            if from_addr.len() >= CODES_PER_ADDR_HOUR {
                return Err(wait_until_oldest_expires(&from_addr, 3600, now).into());
            }
        }
        let code = LoginCode {
            phone: phone.clone(),
            hash: format!("{:016x}", random_u64()),
            code: self.new_code(&phone),
            created_at: now,
            expires_at: now + CODE_TTL_SECS,
            attempts: 0,
            verified: false,
            auth_key_id: who.auth_key_id,
            addr: who.addr.clone(),
        };
        self.codes.put_code(code.clone()).await?;
        self.deliver(&phone, &code).await?;
        Ok(SentCode { hash: code.hash, length: CODE_LENGTH as i32, timeout: CODE_TTL_SECS as i32 })
    }

    /// The live code `hash` of `phone` that `who` asked for. A hash another key asked for is
    /// answered as expired, exactly like an unknown one.
    async fn live_code(&self, who: &Requester, phone: &str, hash: &str) -> Result<LoginCode> {
        if hash.is_empty() {
            return Err(AuthError::PhoneCodeHashEmpty.into());
        }
        let code = self.codes.get_code(phone, hash).await?.filter(|c| c.auth_key_id == who.auth_key_id).ok_or(AuthError::PhoneCodeExpired)?;
        if code.expires_at <= self.clock.now_secs() || code.attempts >= CODE_MAX_ATTEMPTS {
            self.codes.delete_code(phone, hash).await?;
            return Err(AuthError::PhoneCodeExpired.into());
        }
        Ok(code)
    }

    /// `auth.resendCode`: a fresh code under a new hash (the old one dies), counted against
    /// the hourly limit like any other code.
    pub async fn resend_code(&self, who: &Requester, phone: &str, hash: &str) -> Result<SentCode> {
        let phone = self.login_phone(phone).await?;
        self.live_code(who, &phone, hash).await?;
        let sent = self.send_code(who, &phone).await?;
        self.codes.delete_code(&phone, hash).await?;
        Ok(sent)
    }

    pub async fn cancel_code(&self, who: &Requester, phone: &str, hash: &str) -> Result<()> {
        let phone = normalize_phone(phone)?;
        if self.codes.get_code(&phone, hash).await?.is_some_and(|c| c.auth_key_id == who.auth_key_id) {
            self.codes.delete_code(&phone, hash).await?;
        }
        Ok(())
    }

    /// Refuses a sign-in attempt from `who` when its wrong codes for `phone` reached a limit.
    pub(crate) async fn check_failures(&self, who: &Requester, phone: &str, now: i64) -> Result<()> {
        let since = now - 86_400;
        let by_addr = self.codes.failures_since(LoginScope::PhoneAddr(phone, &who.addr), since).await?;
        let by_key = self.codes.failures_since(LoginScope::PhoneKey(phone, who.auth_key_id), since).await?;
        for own in [&by_addr, &by_key] {
            if own.len() >= FAILURES_PER_DAY {
                return Err(wait_until_oldest_expires(own, 86_400, now).into());
            }
        }
        if !by_addr.is_empty() || !by_key.is_empty() {
            let all = self.codes.failures_since(LoginScope::Phone(phone), since).await?;
            if all.len() >= FAILURES_PER_PHONE_DAY {
                let own: Vec<i64> = by_addr.iter().chain(&by_key).copied().collect();
                return Err(wait_until_oldest_expires(&own, 86_400, now).into());
            }
        }
        Ok(())
    }

    pub async fn sign_in(&self, who: &Requester, phone: &str, hash: &str, code: &str) -> Result<SignIn> {
        let phone = self.login_phone(phone).await?;
        if hash.is_empty() {
            return Err(AuthError::PhoneCodeHashEmpty.into());
        }
        if code.is_empty() {
            return Err(AuthError::PhoneCodeEmpty.into());
        }
        let now = self.clock.now_secs();
        self.check_failures(who, &phone, now).await?;
        // One attempt is spent before comparing, atomically: parallel guesses cannot get
        // more tries than CODE_MAX_ATTEMPTS between them. Only the key that asked for the
        // code may spend one (another key's try touches nothing).
        let Some(mut stored) = self.codes.take_attempt(&phone, hash, who.auth_key_id, now, CODE_MAX_ATTEMPTS).await? else {
            return Err(AuthError::PhoneCodeExpired.into());
        };
        if !constant_time_eq(stored.code.as_bytes(), code.as_bytes()) {
            self.codes.record_failure(&phone, &who.addr, who.auth_key_id, now).await?;
            return Err(AuthError::PhoneCodeInvalid.into());
        }
        match self.accounts.user_by_phone(&phone).await? {
            Some(user) => {
                self.codes.delete_code(&phone, hash).await?;
                if self.passwords.password(user.id).await?.is_some() {
                    self.park_for_password(who, user.id).await?;
                    return Err(AuthError::SessionPasswordNeeded.into());
                }
                self.bind(who.auth_key_id, user.id).await?;
                self.announce_login(&user, who.auth_key_id, now).await;
                Ok(SignIn::Authorized(user))
            }
            None => {
                stored.verified = true;
                self.codes.update_code(&stored).await?;
                Ok(SignIn::SignUpRequired)
            }
        }
    }

    pub async fn sign_up(&self, who: &Requester, phone: &str, hash: &str, first: &str, last: &str) -> Result<User> {
        let phone = self.login_phone(phone).await?;
        let stored = self.live_code(who, &phone, hash).await?;
        if !stored.verified {
            return Err(AuthError::PhoneCodeInvalid.into());
        }
        let (first_name, last_name) = validate_names(first, last)?;
        let new = NewUser { phone: phone.clone(), first_name, last_name, home_dc: self.config.dc_id, created_at: self.clock.now_secs() };
        let user = match self.accounts.create_user(new).await {
            Err(StoreError::Conflict(_)) => return Err(AuthError::PhoneNumberOccupied.into()),
            other => other?,
        };
        self.codes.delete_code(&phone, hash).await?;
        self.bind(who.auth_key_id, user.id).await?;
        Ok(user)
    }

    /// Binds the key to `user`; a key that was bound to someone else stops acting for them
    /// on every connection, in every process (the bus tells their subscribers).
    pub(crate) async fn bind(&self, auth_key_id: i64, user: UserId) -> Result<()> {
        if let Some(before) = self.keys.bind_user(auth_key_id, Some(user)).await? {
            if before != user {
                self.bus.publish(Event::KeyUnbound { user: before, auth_key_id });
            }
        }
        Ok(())
    }

    pub async fn log_out(&self, auth_key_id: i64, user: UserId) -> Result<()> {
        self.keys.bind_user(auth_key_id, None).await?;
        self.bus.publish(Event::KeyUnbound { user, auth_key_id });
        Ok(())
    }

    /// Tells the account's sessions, through 777000 as Telegram does, that a new session
    /// logged in, with what its client said about itself. Best effort: the login stands
    /// even if the notice cannot be written.
    pub(crate) async fn announce_login(&self, user: &User, auth_key_id: i64, now: i64) {
        let client = match self.keys.get_key(auth_key_id).await {
            Ok(k) => k.and_then(|k| k.client).unwrap_or_default(),
            Err(_) => ClientInfo::default(),
        };
        let device = [client.device_model.as_str(), client.system_version.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(", ");
        let device = if device.is_empty() { "unknown device".to_string() } else { device };
        let text = format!(
            "New login. Dear {}, we detected a login into your account from a new device on {}.\n\nDevice: {}\nApp: {}\n\nIf this wasn't you, you can end that session in Settings > Devices (account.resetAuthorization).",
            user.first_name,
            crate::text::utc_date_time(now),
            device,
            if client.app_version.is_empty() { "unknown" } else { &client.app_version },
        );
        if let Err(e) = self.messages.send_service_message(user.id, text).await {
            tracing::warn!(error = %e, "could not announce a new login");
        }
    }

    /// `user`'s logged-in sessions (the keys bound to it), most recently used first.
    pub async fn sessions(&self, user: UserId) -> Result<Vec<AuthKeyRecord>> {
        Ok(self.keys.keys_of_user(user).await?)
    }

    /// Ends `user`'s session on key `target` as a logout there would: its connections
    /// learn at once and answer `AUTH_KEY_UNREGISTERED` from then on. The current session
    /// (`current`) is not ended this way (`auth.logOut` is).
    pub async fn end_session(&self, user: UserId, current: i64, target: i64) -> Result<()> {
        if target == current || !self.unbind_session(user, target).await? {
            return Err(AccountError::HashInvalid.into());
        }
        Ok(())
    }

    /// Ends every session of `user`'s but `current`; returns how many were ended (a key that
    /// logged out or went away meanwhile is skipped).
    pub async fn end_other_sessions(&self, user: UserId, current: i64) -> Result<usize> {
        let mut ended = 0;
        for k in self.sessions(user).await?.into_iter().filter(|k| k.id != current) {
            ended += usize::from(self.unbind_session(user, k.id).await?);
        }
        Ok(ended)
    }

    /// Unbinds `target` if it is still `user`'s (atomically: a key that logged in as someone
    /// else meanwhile is left alone) and tells its connections.
    async fn unbind_session(&self, user: UserId, target: i64) -> Result<bool> {
        let unbound = self.keys.unbind_if(target, user).await?;
        if unbound {
            self.bus.publish(Event::KeyUnbound { user, auth_key_id: target });
        }
        Ok(unbound)
    }

    /// `account.setAuthorizationTTL`: sessions of `user` unused for this many days end
    /// (Telegram offers a week to a year; `TTL_DAYS_INVALID` outside 1–730).
    pub async fn set_session_ttl(&self, user: UserId, days: i32) -> Result<()> {
        if !(1..=730).contains(&days) {
            return Err(AccountError::TtlDaysInvalid.into());
        }
        Ok(self.keys.set_session_ttl(user, days).await?)
    }

    pub async fn session_ttl(&self, user: UserId) -> Result<i32> {
        Ok(self.keys.session_ttl(user).await?)
    }

    /// Ends sessions unused for longer than their account allows, as a logout elsewhere
    /// would (their connections learn at once). Returns how many ended.
    pub async fn end_stale_sessions(&self) -> Result<usize> {
        let mut ended = 0;
        for (key, user) in self.keys.stale_sessions(self.clock.now_secs(), 1000).await? {
            ended += usize::from(self.unbind_session(user, key).await?);
        }
        Ok(ended)
    }

    /// Collects code and failure rows that no limit looks at any more, and expired SRP
    /// exchanges and parked logins.
    pub async fn purge(&self) -> Result<usize> {
        let now = self.clock.now_secs();
        Ok(self.codes.purge_login_rows(now - LOGIN_ROWS_TTL_SECS).await? + self.passwords.purge_password_rows(now).await?)
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
