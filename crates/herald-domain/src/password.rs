//! Two-step verification: a password on top of the login code, checked with Telegram's
//! SRP-6a (`herald_mtproto::srp`; docs/client-compat.md §3.3–3.4, docs/security.md §1.6).
//!
//! - The client sends only salts and the verifier `v`; the server never sees the password.
//! - Each `account.getPassword` opens one exchange (`SrpChallenge`, fresh secret `b`) that a
//!   proof may use once, within [`SRP_TTL_SECS`].
//! - A login whose code was right but whose account has a password is parked for the key
//!   ([`PENDING_LOGIN_TTL_SECS`]) until `auth.checkPassword` proves the password.
//! - Wrong proofs count with wrong login codes against the account's phone (the per-address,
//!   per-key and per-phone daily limits of [`crate::auth`]), so guessing ends in FLOOD_WAIT.
//! - A recovery email is confirmed with a code, and a code sent to it ends a forgotten
//!   password. Codes go where login codes go: the log in development, and the code hook.

use crate::auth::{AuthService, Requester};
use crate::clock::random_u64;
use crate::error::{AuthError, Result};
use crate::model::*;
use herald_mtproto::srp;

/// A `getPassword` exchange stays usable this long.
pub const SRP_TTL_SECS: i64 = 600;
/// A login that passed its code waits this long for the password.
pub const PENDING_LOGIN_TTL_SECS: i64 = 600;
pub const EMAIL_CODE_LENGTH: usize = 6;
pub const EMAIL_CODE_TTL_SECS: i64 = 900;
pub const EMAIL_CODE_MAX_ATTEMPTS: i32 = 5;
/// Open SRP exchanges kept per account; older ones are dropped when a new one opens.
pub const CHALLENGES_PER_USER_MAX: usize = 10;
pub const HINT_MAX: usize = 128;
pub const EMAIL_MAX: usize = 128;
/// Salts the client may choose: Telegram's clients extend the server's 8-byte `salt1`
/// prefix with 32 random bytes.
const SALT_LEN: std::ops::RangeInclusive<usize> = 8..=128;

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the operating system RNG failed");
    b
}

/// What `account.getPassword` shows.
#[derive(Clone, Debug)]
pub struct PasswordInfo {
    /// The current password's salts and the exchange opened for this call.
    pub current: Option<Current>,
    pub hint: String,
    pub has_recovery: bool,
    pub email_unconfirmed_pattern: Option<String>,
    /// Salt prefixes for a new password.
    pub new_salt1: Vec<u8>,
    pub new_salt2: Vec<u8>,
    pub secure_random: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Current {
    pub salt1: Vec<u8>,
    pub salt2: Vec<u8>,
    pub srp_id: i64,
    pub big_b: Vec<u8>,
}

/// A client's proof (`inputCheckPasswordSRP`).
#[derive(Clone, Debug)]
pub struct Proof {
    pub srp_id: i64,
    pub a: Vec<u8>,
    pub m1: Vec<u8>,
}

/// `account.passwordInputSettings`, read.
#[derive(Clone, Debug, Default)]
pub struct NewSettings {
    /// `None`: keep the password. `Some(None)`: remove it. `Some(Some(..))`: set it.
    pub password: Option<Option<NewPassword>>,
    pub hint: Option<String>,
    /// `Some("")` removes the recovery email.
    pub email: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewPassword {
    pub salt1: Vec<u8>,
    pub salt2: Vec<u8>,
    pub verifier: Vec<u8>,
}

/// `a***@e***.com`: enough to recognise one's own address.
pub fn email_pattern(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let tld = if tld.is_empty() { String::new() } else { format!(".{tld}") };
    format!("{}***@{}***{tld}", first(local), first(host))
}

/// A password record for a new password, after checking what the client chose: salts of 8
/// to 128 bytes (`NEW_SALT_INVALID`) and a verifier strictly between 1 and p − 1
/// (`NEW_SETTINGS_INVALID`). The recovery email carries over; the hint starts empty.
fn new_record(user: UserId, p: NewPassword, email: Option<String>, now: i64) -> Result<Password> {
    if !SALT_LEN.contains(&p.salt1.len()) || !SALT_LEN.contains(&p.salt2.len()) {
        return Err(AuthError::NewSaltInvalid.into());
    }
    let v = srp::pad(&p.verifier).filter(srp::in_range).ok_or(AuthError::NewSettingsInvalid)?;
    Ok(Password { user, salt1: p.salt1, salt2: p.salt2, verifier: v.to_vec(), hint: String::new(), email, pending_email: None, code: None, set_at: now })
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= EMAIL_MAX
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

impl AuthService {
    async fn password_of(&self, user: UserId) -> Result<Option<Password>> {
        Ok(self.passwords.password(user).await?)
    }

    /// The account a key acts for in the password calls: its logged-in user, or the one whose
    /// login waits for the password on this key.
    pub async fn password_user(&self, who: &Requester, logged_in: Option<UserId>) -> Result<UserId> {
        if let Some(u) = logged_in {
            return Ok(u);
        }
        self.passwords.password_login(who.auth_key_id, self.clock.now_secs()).await?.ok_or_else(|| AuthError::Unregistered.into())
    }

    /// Parks a login that passed its code until the password is proven.
    pub(crate) async fn park_for_password(&self, who: &Requester, user: UserId) -> Result<()> {
        let until = self.clock.now_secs() + PENDING_LOGIN_TTL_SECS;
        self.passwords.put_password_login(who.auth_key_id, user, until).await?;
        Ok(())
    }

    /// `account.getPassword`: opens an SRP exchange when a password is set.
    pub async fn password_info(&self, user: UserId) -> Result<PasswordInfo> {
        let stored = self.password_of(user).await?;
        let current = match &stored {
            Some(p) => {
                let v = srp::pad(&p.verifier).ok_or_else(|| crate::error::StoreError::Backend("stored verifier too long".into()))?;
                let b: srp::Num = random_bytes(256).try_into().expect("256 bytes");
                let big_b = srp::server_public(&v, &b).to_vec();
                let challenge = SrpChallenge {
                    id: (random_u64() >> 1) as i64,
                    user,
                    b: b.to_vec(),
                    big_b: big_b.clone(),
                    verifier: p.verifier.clone(),
                    expires_at: self.clock.now_secs() + SRP_TTL_SECS,
                };
                self.passwords.put_challenge(&challenge).await?;
                Some(Current { salt1: p.salt1.clone(), salt2: p.salt2.clone(), srp_id: challenge.id, big_b })
            }
            None => None,
        };
        Ok(PasswordInfo {
            current,
            hint: stored.as_ref().map(|p| p.hint.clone()).unwrap_or_default(),
            has_recovery: stored.as_ref().is_some_and(|p| p.email.is_some()),
            email_unconfirmed_pattern: stored.as_ref().and_then(|p| p.pending_email.as_deref()).map(email_pattern),
            new_salt1: random_bytes(8),
            new_salt2: random_bytes(16),
            secure_random: random_bytes(32),
        })
    }

    /// Checks `proof` against `user`'s current password (`None`: the client says there is
    /// none). A wrong proof counts as a failed login attempt; too many give FLOOD_WAIT.
    async fn verify_current(&self, who: &Requester, user: UserId, proof: Option<&Proof>) -> Result<Option<Password>> {
        let stored = self.password_of(user).await?;
        let (Some(current), Some(proof)) = (&stored, proof) else {
            return match (&stored, proof) {
                (None, None) => Ok(None),
                (None, Some(_)) => Err(AuthError::PasswordEmpty.into()),
                _ => Err(AuthError::PasswordHashInvalid.into()),
            };
        };
        let phone = self.accounts.user_by_id(user).await?.map(|u| u.phone).unwrap_or_default();
        let now = self.clock.now_secs();
        self.check_failures(who, &phone, now).await?;
        let challenge = self.passwords.take_challenge(proof.srp_id, now).await?.filter(|c| c.user == user).ok_or(AuthError::SrpIdInvalid)?;
        if challenge.verifier != current.verifier {
            return Err(AuthError::SrpPasswordChanged.into());
        }
        let ok = match (srp::pad(&current.verifier), srp::pad(&challenge.b), srp::pad(&challenge.big_b)) {
            (Some(v), Some(b), Some(big_b)) => srp::check(&v, &b, &big_b, &current.salt1, &current.salt2, &proof.a, &proof.m1),
            _ => false,
        };
        if !ok {
            self.codes.record_failure(&phone, &who.addr, who.auth_key_id, now).await?;
            return Err(AuthError::PasswordHashInvalid.into());
        }
        Ok(stored)
    }

    /// `auth.checkPassword`: the password proof that completes a parked login.
    pub async fn check_password(&self, who: &Requester, proof: &Proof) -> Result<User> {
        let now = self.clock.now_secs();
        let user_id = self.passwords.password_login(who.auth_key_id, now).await?.ok_or(AuthError::SrpIdInvalid)?;
        self.verify_current(who, user_id, Some(proof)).await?;
        self.finish_password_login(who, user_id, now).await
    }

    async fn finish_password_login(&self, who: &Requester, user_id: UserId, now: i64) -> Result<User> {
        let user = self.accounts.user_by_id(user_id).await?.ok_or(AuthError::Unregistered)?;
        self.passwords.end_password_login(who.auth_key_id).await?;
        self.bind(who.auth_key_id, user.id).await?;
        self.announce_login(&user, who.auth_key_id, now).await;
        Ok(user)
    }

    /// `account.deleteAccount`: deletes the account at once (with its password proven when
    /// it has one: `PASSWORD_HASH_INVALID`); every session ends.
    pub async fn delete_account(&self, who: &Requester, user: UserId, proof: Option<&Proof>) -> Result<()> {
        if self.password_of(user).await?.is_some() {
            self.verify_current(who, user, Some(proof.ok_or(AuthError::PasswordHashInvalid)?)).await?;
        }
        self.erase_account(user).await
    }

    async fn erase_account(&self, user: UserId) -> Result<()> {
        for key in self.accounts.delete_account(user).await? {
            self.bus.publish(crate::bus::Event::KeyUnbound { user, auth_key_id: key });
        }
        tracing::info!(user = user.0, "account deleted");
        Ok(())
    }

    /// `account.setAccountTTL`: the account is deleted after this many days without activity
    /// (30 to 730; `TTL_DAYS_INVALID`).
    pub async fn set_account_ttl(&self, user: UserId, days: i32) -> Result<()> {
        if !(30..=730).contains(&days) {
            return Err(crate::error::AccountError::TtlDaysInvalid.into());
        }
        Ok(self.accounts.set_account_ttl(user, days).await?)
    }

    /// Deletes accounts inactive for longer than they allow (run by the maintenance task).
    pub async fn delete_inactive_accounts(&self) -> Result<usize> {
        let due = self.accounts.inactive_accounts(self.clock.now_secs(), 100).await?;
        for u in &due {
            self.erase_account(*u).await?;
        }
        Ok(due.len())
    }

    /// `account.getPasswordSettings`: the recovery email, to one who proves the password.
    pub async fn password_settings(&self, who: &Requester, user: UserId, proof: Option<&Proof>) -> Result<Option<String>> {
        let stored = self.verify_current(who, user, proof).await?.ok_or(AuthError::PasswordEmpty)?;
        Ok(stored.email)
    }

    /// `account.updatePasswordSettings`: set, change or remove the password, its hint and its
    /// recovery email, after proving the current password (if any). A new email is kept
    /// pending and a code sent to it: the change stands, and `EMAIL_UNCONFIRMED_6` says so.
    pub async fn update_password(&self, who: &Requester, user: UserId, proof: Option<&Proof>, new: NewSettings) -> Result<()> {
        let stored = self.verify_current(who, user, proof).await?;
        let now = self.clock.now_secs();
        let mut record = match new.password {
            Some(None) => {
                if stored.is_some() {
                    self.passwords.delete_password(user).await?;
                }
                return Ok(());
            }
            Some(Some(p)) => new_record(user, p, stored.as_ref().and_then(|k| k.email.clone()), now)?,
            None => stored.clone().ok_or(AuthError::PasswordEmpty)?,
        };
        if let Some(hint) = new.hint {
            let hint = crate::text::clean_name(&hint);
            if hint.chars().count() > HINT_MAX {
                return Err(AuthError::NewSettingsInvalid.into());
            }
            record.hint = hint;
        }
        let mut unconfirmed = false;
        match new.email.as_deref().map(str::trim) {
            Some("") => {
                record.email = None;
                record.pending_email = None;
                record.code = None;
            }
            Some(email) => {
                if !valid_email(email) {
                    return Err(AuthError::EmailInvalid.into());
                }
                record.pending_email = Some(email.to_string());
                let current = stored.as_ref().and_then(|p| p.code.clone());
                record.code = Some(self.email_code(
                    user,
                    email,
                    CodePurpose::ConfirmEmail,
                    current.as_ref().filter(|_| stored.as_ref().and_then(|p| p.pending_email.as_deref()) == Some(email)),
                )?);
                unconfirmed = true;
            }
            None => {}
        }
        self.passwords.put_password(&record).await?;
        if unconfirmed {
            return Err(AuthError::EmailUnconfirmed(EMAIL_CODE_LENGTH as i32).into());
        }
        Ok(())
    }

    /// A code for `purpose`, sent to `email` the way login codes are delivered: the live one
    /// again when there is one (its spent tries stay spent, so asking again gives no new
    /// guesses), else a fresh one. At most the `email_codes` flood row's emails per
    /// account (`FLOOD_WAIT_X`).
    fn email_code(&self, user: UserId, email: &str, purpose: CodePurpose, current: Option<&EmailCode>) -> Result<EmailCode> {
        self.email_codes.take(user, 1.0, self.clock.now_ms()).map_err(AuthError::FloodWait)?;
        let now = self.clock.now_secs();
        let live = current.filter(|c| c.purpose == purpose && c.expires_at > now && c.attempts < EMAIL_CODE_MAX_ATTEMPTS).cloned();
        let code = live.as_ref().map(|c| c.code.clone()).unwrap_or_else(|| format!("{:06}", random_u64() % 1_000_000));
        if self.config.log_codes || self.config.test_phones {
            tracing::info!(email, code = %code, ?purpose, "email code issued");
        } else {
            tracing::debug!(?purpose, "email code issued");
        }
        if let Some(hook) = &self.hook {
            hook.deliver(crate::auth::CodeTo::Email(email), &code);
        }
        Ok(live.unwrap_or(EmailCode { code, purpose, expires_at: now + EMAIL_CODE_TTL_SECS, attempts: 0 }))
    }

    /// Spends a try of the emailed code for `purpose` and compares it. `expired` is the error
    /// for no live code. Wrong codes count with wrong login codes for the account's phone
    /// (the daily limits of `crate::auth`), so asking for code after code gains nothing.
    async fn use_email_code(&self, who: &Requester, user: UserId, purpose: CodePurpose, code: &str, expired: AuthError) -> Result<Password> {
        let now = self.clock.now_secs();
        let phone = self.accounts.user_by_id(user).await?.map(|u| u.phone).unwrap_or_default();
        self.check_failures(who, &phone, now).await?;
        let stored = self.passwords.take_code_attempt(user, purpose, now, EMAIL_CODE_MAX_ATTEMPTS).await?.ok_or(expired)?;
        let sent = stored.code.as_ref().map(|c| c.code.as_bytes()).unwrap_or_default();
        if code.is_empty() || !crate::auth::constant_time_eq(sent, code.trim().as_bytes()) {
            self.codes.record_failure(&phone, &who.addr, who.auth_key_id, now).await?;
            return Err(AuthError::CodeInvalid.into());
        }
        Ok(stored)
    }

    /// `account.confirmPasswordEmail`.
    pub async fn confirm_email(&self, who: &Requester, user: UserId, code: &str) -> Result<()> {
        let mut record = self.use_email_code(who, user, CodePurpose::ConfirmEmail, code, AuthError::EmailHashExpired).await?;
        record.email = record.pending_email.take();
        record.code = None;
        self.passwords.put_password(&record).await?;
        Ok(())
    }

    /// `account.resendPasswordEmail`: a new code to the pending email.
    pub async fn resend_email(&self, user: UserId) -> Result<()> {
        let mut record = self.password_of(user).await?.ok_or(AuthError::EmailHashExpired)?;
        let email = record.pending_email.clone().ok_or(AuthError::EmailHashExpired)?;
        record.code = Some(self.email_code(user, &email, CodePurpose::ConfirmEmail, record.code.as_ref())?);
        self.passwords.put_password(&record).await?;
        Ok(())
    }

    /// `account.cancelPasswordEmail`: forget the pending email.
    pub async fn cancel_email(&self, user: UserId) -> Result<()> {
        if let Some(mut record) = self.password_of(user).await? {
            if record.pending_email.take().is_some() {
                record.code = None;
                self.passwords.put_password(&record).await?;
            }
        }
        Ok(())
    }

    /// `auth.requestPasswordRecovery`: a code to the confirmed recovery email; answers its
    /// pattern.
    pub async fn request_recovery(&self, user: UserId) -> Result<String> {
        let mut record = self.password_of(user).await?.ok_or(AuthError::PasswordEmpty)?;
        let email = record.email.clone().ok_or(AuthError::PasswordRecoveryNa)?;
        record.code = Some(self.email_code(user, &email, CodePurpose::Recover, record.code.as_ref())?);
        self.passwords.put_password(&record).await?;
        Ok(email_pattern(&email))
    }

    /// `auth.checkRecoveryPassword`: whether the recovery code is right (a try is spent).
    pub async fn check_recovery_code(&self, who: &Requester, user: UserId, code: &str) -> Result<()> {
        // The try counts; the code stays usable for `auth.recoverPassword`.
        self.use_email_code(who, user, CodePurpose::Recover, code, AuthError::PasswordRecoveryExpired).await?;
        Ok(())
    }

    /// `auth.recoverPassword`: the emailed code replaces the password (removed, or set to
    /// `new`) and completes a parked login on this key. Returns the account.
    pub async fn recover(&self, who: &Requester, user: UserId, code: &str, new: Option<NewPassword>) -> Result<User> {
        self.use_email_code(who, user, CodePurpose::Recover, code, AuthError::PasswordRecoveryExpired).await?;
        let now = self.clock.now_secs();
        match new {
            Some(p) => {
                let email = self.password_of(user).await?.and_then(|o| o.email);
                self.passwords.put_password(&new_record(user, p, email, now)?).await?;
            }
            None => self.passwords.delete_password(user).await?,
        }
        if self.passwords.password_login(who.auth_key_id, now).await? == Some(user) {
            return self.finish_password_login(who, user, now).await;
        }
        Ok(self.accounts.user_by_id(user).await?.ok_or(AuthError::Unregistered)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_patterns_and_checks() {
        assert_eq!(email_pattern("alice@example.com"), "a***@e***.com");
        assert_eq!(email_pattern("bob@mail.example.org"), "b***@m***.org");
        assert!(valid_email("a@b.co"));
        for bad in ["", "a", "@b.co", "a@", "a@b", "a@.b", "a@b.", "a b@c.de", "a@b@c.de"] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(!valid_email(&format!("{}@b.co", "a".repeat(EMAIL_MAX))));
    }
}
