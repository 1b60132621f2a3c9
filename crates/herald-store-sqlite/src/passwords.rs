use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::model::{CodePurpose, EmailCode, Password, SrpChallenge, UserId};
use herald_domain::store::{PasswordStore, StoreResult};
use rusqlite::{params, OptionalExtension, Row};

const COLUMNS: &str = "user_id, salt1, salt2, verifier, hint, email, pending_email, code, code_purpose, code_expires_at, code_attempts, set_at";

fn password_from_row(r: &Row) -> rusqlite::Result<Password> {
    let code: Option<String> = r.get(7)?;
    let purpose: Option<i64> = r.get(8)?;
    Ok(Password {
        user: UserId(r.get(0)?),
        salt1: r.get(1)?,
        salt2: r.get(2)?,
        verifier: r.get(3)?,
        hint: r.get(4)?,
        email: r.get(5)?,
        pending_email: r.get(6)?,
        code: match (code, purpose) {
            (Some(code), Some(p)) => Some(EmailCode {
                code,
                purpose: if p == CodePurpose::Recover as i64 { CodePurpose::Recover } else { CodePurpose::ConfirmEmail },
                expires_at: r.get::<_, Option<i64>>(9)?.unwrap_or(0),
                attempts: r.get::<_, Option<i32>>(10)?.unwrap_or(0),
            }),
            _ => None,
        },
        set_at: r.get(11)?,
    })
}

fn challenge_from_row(r: &Row) -> rusqlite::Result<SrpChallenge> {
    Ok(SrpChallenge { id: r.get(0)?, user: UserId(r.get(1)?), b: r.get(2)?, big_b: r.get(3)?, verifier: r.get(4)?, expires_at: r.get(5)? })
}

#[async_trait]
impl PasswordStore for SqliteStore {
    async fn password(&self, user: UserId) -> StoreResult<Option<Password>> {
        self.read(move |conn| {
            conn.query_row(&format!("SELECT {COLUMNS} FROM passwords WHERE user_id = ?1"), [user.0], password_from_row).optional().map_err(backend)
        })
        .await
    }

    async fn put_password(&self, p: &Password) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |conn| {
            let c = p.code.as_ref();
            conn.execute(
                &format!("INSERT OR REPLACE INTO passwords ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    p.user.0,
                    p.salt1,
                    p.salt2,
                    p.verifier,
                    p.hint,
                    p.email,
                    p.pending_email,
                    c.map(|c| c.code.clone()),
                    c.map(|c| c.purpose as i64),
                    c.map(|c| c.expires_at),
                    c.map(|c| c.attempts),
                    p.set_at
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_password(&self, user: UserId) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("DELETE FROM passwords WHERE user_id = ?1", [user.0]).map_err(backend)?;
            // Exchanges opened for the old password die with it.
            conn.execute("DELETE FROM srp_challenges WHERE user_id = ?1", [user.0]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn take_code_attempt(&self, user: UserId, purpose: CodePurpose, now: i64, max_attempts: i32) -> StoreResult<Option<Password>> {
        self.write(move |conn| {
            conn.query_row(
                &format!(
                    "UPDATE passwords SET code_attempts = code_attempts + 1
                     WHERE user_id = ?1 AND code IS NOT NULL AND code_purpose = ?2 AND code_expires_at > ?3 AND code_attempts < ?4
                     RETURNING {COLUMNS}"
                ),
                params![user.0, purpose as i64, now, max_attempts],
                password_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_challenge(&self, c: &SrpChallenge) -> StoreResult<()> {
        let c = c.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO srp_challenges (id, user_id, b, big_b, verifier, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.id, c.user.0, c.b, c.big_b, c.verifier, c.expires_at],
            )
            .map_err(backend)?;
            // Only the newest few stay open per account, however often it asks.
            conn.execute(
                "DELETE FROM srp_challenges WHERE user_id = ?1 AND id NOT IN
                    (SELECT id FROM srp_challenges WHERE user_id = ?1 ORDER BY expires_at DESC LIMIT ?2)",
                params![c.user.0, herald_domain::password::CHALLENGES_PER_USER_MAX as i64],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn take_challenge(&self, id: i64, now: i64) -> StoreResult<Option<SrpChallenge>> {
        self.write(move |conn| {
            conn.query_row("DELETE FROM srp_challenges WHERE id = ?1 RETURNING id, user_id, b, big_b, verifier, expires_at", [id], challenge_from_row)
                .optional()
                .map(|c| c.filter(|c| c.expires_at > now))
                .map_err(backend)
        })
        .await
    }

    async fn put_password_login(&self, auth_key_id: i64, user: UserId, expires_at: i64) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("INSERT OR REPLACE INTO password_logins (key_id, user_id, expires_at) VALUES (?1, ?2, ?3)", params![auth_key_id, user.0, expires_at])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn password_login(&self, auth_key_id: i64, now: i64) -> StoreResult<Option<UserId>> {
        self.read(move |conn| {
            conn.query_row("SELECT user_id FROM password_logins WHERE key_id = ?1 AND expires_at > ?2", [auth_key_id, now], |r| r.get(0))
                .optional()
                .map(|u| u.map(UserId))
                .map_err(backend)
        })
        .await
    }

    async fn end_password_login(&self, auth_key_id: i64) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("DELETE FROM password_logins WHERE key_id = ?1", [auth_key_id]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn purge_password_rows(&self, now: i64) -> StoreResult<usize> {
        self.write(move |conn| {
            let a = conn.execute("DELETE FROM srp_challenges WHERE expires_at <= ?1", [now]).map_err(backend)?;
            let b = conn.execute("DELETE FROM password_logins WHERE expires_at <= ?1", [now]).map_err(backend)?;
            Ok(a + b)
        })
        .await
    }
}
