use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::model::LoginCode;
use herald_domain::store::{LoginCodeStore, LoginScope, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Times in `column` of `table`'s rows in `scope` since `since`. `table` and `column` are
/// our constants; each scope has an index whose prefix it fills.
fn times(conn: &Connection, table: &str, column: &str, scope: LoginScope<'_>, since: i64) -> StoreResult<Vec<i64>> {
    let (filter, a, b): (&str, rusqlite::types::Value, rusqlite::types::Value) = match scope {
        LoginScope::Phone(p) => ("phone = ?1 AND ?2 = ?2", p.to_string().into(), 0.into()),
        LoginScope::PhoneAddr(p, addr) => ("phone = ?1 AND addr = ?2", p.to_string().into(), addr.to_string().into()),
        LoginScope::PhoneKey(p, key) => ("phone = ?1 AND key_id = ?2", p.to_string().into(), key.into()),
        LoginScope::Addr(addr) => ("addr = ?1 AND ?2 = ?2", addr.to_string().into(), 0.into()),
    };
    let sql = format!("SELECT {column} FROM {table} WHERE {filter} AND {column} >= ?3");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt.query_map(params![a, b, since], |r| r.get(0)).map_err(backend)?;
    rows.collect::<Result<Vec<i64>, _>>().map_err(backend)
}

const CODE_COLUMNS: &str = "phone, hash, code, created_at, expires_at, attempts, verified, key_id, addr";

fn code_from_row(r: &Row) -> rusqlite::Result<LoginCode> {
    Ok(LoginCode {
        phone: r.get(0)?,
        hash: r.get(1)?,
        code: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        attempts: r.get(5)?,
        verified: r.get(6)?,
        auth_key_id: r.get(7)?,
        addr: r.get(8)?,
    })
}

#[async_trait]
impl LoginCodeStore for SqliteStore {
    async fn put_code(&self, c: LoginCode) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                &format!("INSERT OR REPLACE INTO login_codes ({CODE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![c.phone, c.hash, c.code, c.created_at, c.expires_at, c.attempts, c.verified, c.auth_key_id, c.addr],
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

    async fn take_attempt(&self, phone: &str, hash: &str, auth_key_id: i64, now: i64, max_attempts: i32) -> StoreResult<Option<LoginCode>> {
        let (phone, hash) = (phone.to_string(), hash.to_string());
        self.write(move |conn| {
            conn.query_row(
                &format!(
                    "UPDATE login_codes SET attempts = attempts + 1
                     WHERE phone = ?1 AND hash = ?2 AND key_id = ?5 AND attempts < ?3 AND expires_at > ?4 RETURNING {CODE_COLUMNS}"
                ),
                params![phone, hash, max_attempts, now, auth_key_id],
                code_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn record_failure(&self, phone: &str, addr: &str, auth_key_id: i64, at: i64) -> StoreResult<()> {
        let (phone, addr) = (phone.to_string(), addr.to_string());
        self.write(move |conn| {
            conn.execute("INSERT INTO login_failures (phone, addr, key_id, at) VALUES (?1, ?2, ?3, ?4)", params![phone, addr, auth_key_id, at])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn failures_since(&self, scope: LoginScope<'_>, since: i64) -> StoreResult<Vec<i64>> {
        let scope = owned(scope);
        self.read(move |conn| times(conn, "login_failures", "at", scope.borrow(), since)).await
    }

    async fn update_code(&self, c: &LoginCode) -> StoreResult<()> {
        self.put_code(c.clone()).await
    }

    async fn delete_code(&self, phone: &str, hash: &str) -> StoreResult<()> {
        let (phone, hash) = (phone.to_string(), hash.to_string());
        self.write(move |conn| {
            // Issue times stay for flood control: keep a tombstone with an empty code.
            conn.execute("UPDATE login_codes SET code = '', expires_at = 0 WHERE phone = ?1 AND hash = ?2", params![phone, hash]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn codes_since(&self, scope: LoginScope<'_>, since: i64) -> StoreResult<Vec<i64>> {
        let scope = owned(scope);
        self.read(move |conn| times(conn, "login_codes", "created_at", scope.borrow(), since)).await
    }

    async fn purge_login_rows(&self, before: i64) -> StoreResult<usize> {
        self.write(move |conn| {
            let a = conn.execute("DELETE FROM login_codes WHERE created_at < ?1", [before]).map_err(backend)?;
            let b = conn.execute("DELETE FROM login_failures WHERE at < ?1", [before]).map_err(backend)?;
            Ok(a + b)
        })
        .await
    }
}

/// A [`LoginScope`] that can move to a reader thread.
enum OwnedScope {
    Phone(String),
    PhoneAddr(String, String),
    PhoneKey(String, i64),
    Addr(String),
}

fn owned(s: LoginScope<'_>) -> OwnedScope {
    match s {
        LoginScope::Phone(p) => OwnedScope::Phone(p.into()),
        LoginScope::PhoneAddr(p, a) => OwnedScope::PhoneAddr(p.into(), a.into()),
        LoginScope::PhoneKey(p, k) => OwnedScope::PhoneKey(p.into(), k),
        LoginScope::Addr(a) => OwnedScope::Addr(a.into()),
    }
}

impl OwnedScope {
    fn borrow(&self) -> LoginScope<'_> {
        match self {
            OwnedScope::Phone(p) => LoginScope::Phone(p),
            OwnedScope::PhoneAddr(p, a) => LoginScope::PhoneAddr(p, a),
            OwnedScope::PhoneKey(p, k) => LoginScope::PhoneKey(p, *k),
            OwnedScope::Addr(a) => LoginScope::Addr(a),
        }
    }
}
