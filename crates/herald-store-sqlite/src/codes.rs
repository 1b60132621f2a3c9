use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::model::LoginCode;
use herald_domain::store::{LoginCodeStore, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Forgets the rows of `table` older than `since` (they no longer count for any limit) and
/// returns the times of the phone's remaining ones. `table` and `column` are our constants.
fn recent_times(conn: &Connection, table: &str, column: &str, phone: &str, since: i64) -> StoreResult<Vec<i64>> {
    conn.execute(&format!("DELETE FROM {table} WHERE {column} < ?1"), [since]).map_err(backend)?;
    let mut stmt = conn.prepare_cached(&format!("SELECT {column} FROM {table} WHERE phone = ?1 AND {column} >= ?2")).map_err(backend)?;
    let rows = stmt.query_map(params![phone, since], |r| r.get(0)).map_err(backend)?;
    rows.collect::<Result<Vec<i64>, _>>().map_err(backend)
}

const CODE_COLUMNS: &str = "phone, hash, code, created_at, expires_at, attempts, verified";

fn code_from_row(r: &Row) -> rusqlite::Result<LoginCode> {
    Ok(LoginCode {
        phone: r.get(0)?,
        hash: r.get(1)?,
        code: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        attempts: r.get(5)?,
        verified: r.get(6)?,
    })
}

#[async_trait]
impl LoginCodeStore for SqliteStore {
    async fn put_code(&self, c: LoginCode) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO login_codes (phone, hash, code, created_at, expires_at, attempts, verified)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![c.phone, c.hash, c.code, c.created_at, c.expires_at, c.attempts, c.verified],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_code(&self, phone: &str, hash: &str) -> StoreResult<Option<LoginCode>> {
        let (phone, hash) = (phone.to_string(), hash.to_string());
        self.read(move |conn| {
            conn.query_row(&format!("SELECT {CODE_COLUMNS} FROM login_codes WHERE phone = ?1 AND hash = ?2"), params![phone, hash], code_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn take_attempt(&self, phone: &str, hash: &str, now: i64, max_attempts: i32) -> StoreResult<Option<LoginCode>> {
        let (phone, hash) = (phone.to_string(), hash.to_string());
        self.write(move |conn| {
            conn.query_row(
                &format!(
                    "UPDATE login_codes SET attempts = attempts + 1
                     WHERE phone = ?1 AND hash = ?2 AND attempts < ?3 AND expires_at > ?4 RETURNING {CODE_COLUMNS}"
                ),
                params![phone, hash, max_attempts, now],
                code_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn record_failure(&self, phone: &str, at: i64) -> StoreResult<()> {
        let phone = phone.to_string();
        self.write(move |conn| {
            conn.execute("INSERT INTO login_failures (phone, at) VALUES (?1, ?2)", params![phone, at]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn failures_since(&self, phone: &str, since: i64) -> StoreResult<Vec<i64>> {
        let phone = phone.to_string();
        self.write(move |conn| recent_times(conn, "login_failures", "at", &phone, since)).await
    }

    async fn update_code(&self, c: &LoginCode) -> StoreResult<()> {
        self.put_code(c.clone()).await
    }

    async fn delete_code(&self, phone: &str, hash: &str) -> StoreResult<()> {
        let (phone, hash) = (phone.to_string(), hash.to_string());
        self.write(move |conn| {
            // Issue times stay for flood control: keep a tombstone with an empty code.
            conn.execute("UPDATE login_codes SET code = '', expires_at = 0 WHERE phone = ?1 AND hash = ?2", params![phone, hash])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn codes_since(&self, phone: &str, since: i64) -> StoreResult<Vec<i64>> {
        let phone = phone.to_string();
        self.write(move |conn| recent_times(conn, "login_codes", "created_at", &phone, since)).await
    }
}
