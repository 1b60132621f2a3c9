use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::error::StoreError;
use herald_domain::model::{AuthKeyRecord, ClientInfo, UserId};
use herald_domain::store::{AuthKeyStore, StoreResult};
use rusqlite::{params, OptionalExtension};

const KEY_COLUMNS: &str = "id, key, created_at, expires_at, user_id, layer, api_id, device_model, system_version,
    app_version, system_lang_code, lang_pack, lang_code, first_salt, last_used_at, addr, perm_key_id";

fn key_from_row(r: &rusqlite::Row) -> rusqlite::Result<AuthKeyRecord> {
    let layer: Option<i32> = r.get(5)?;
    let client = match layer {
        Some(layer) => Some(ClientInfo {
            layer,
            api_id: r.get::<_, Option<i32>>(6)?.unwrap_or_default(),
            device_model: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            system_version: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
            app_version: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
            system_lang_code: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
            lang_pack: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
            lang_code: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(AuthKeyRecord {
        id: r.get(0)?,
        key: r.get(1)?,
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        user_id: r.get::<_, Option<i64>>(4)?.map(UserId),
        client,
        first_salt: r.get(13)?,
        last_used_at: r.get(14)?,
        addr: r.get(15)?,
        perm_key_id: r.get(16)?,
    })
}

#[async_trait]
impl AuthKeyStore for SqliteStore {
    async fn insert_key(&self, key: AuthKeyRecord) -> StoreResult<bool> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "INSERT OR IGNORE INTO auth_keys (id, key, created_at, expires_at, first_salt, last_used_at, addr) VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?6)",
                    params![key.id, key.key, key.created_at, key.expires_at, key.first_salt, key.addr],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_key(&self, id: i64) -> StoreResult<Option<AuthKeyRecord>> {
        self.read(move |conn| conn.query_row(&format!("SELECT {KEY_COLUMNS} FROM auth_keys WHERE id = ?1"), [id], key_from_row).optional().map_err(backend))
            .await
    }

    async fn keys_of_user(&self, user: UserId) -> StoreResult<Vec<AuthKeyRecord>> {
        self.read(move |conn| {
            let mut st =
                conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM auth_keys WHERE user_id = ?1 ORDER BY last_used_at DESC, id")).map_err(backend)?;
            let rows = st.query_map([user.0], key_from_row).map_err(backend)?;
            let mut keys = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            for k in &mut keys {
                k.key.clear(); // listings never carry key material
            }
            Ok(keys)
        })
        .await
    }

    async fn bind_user(&self, id: i64, user: Option<UserId>) -> StoreResult<Option<UserId>> {
        self.write(move |conn| {
            let before: Option<Option<i64>> = conn.query_row("SELECT user_id FROM auth_keys WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(backend)?;
            // A key collected while its connection stayed open cannot be logged into.
            let Some(before) = before else { return Err(StoreError::Backend(format!("auth key {id:016x} no longer exists"))) };
            conn.execute("UPDATE auth_keys SET user_id = ?2 WHERE id = ?1", params![id, user.map(|u| u.0)]).map_err(backend)?;
            Ok(before.map(UserId))
        })
        .await
    }

    async fn unbind_if(&self, id: i64, user: UserId) -> StoreResult<bool> {
        self.write(move |conn| {
            let n = conn.execute("UPDATE auth_keys SET user_id = NULL WHERE id = ?1 AND user_id = ?2", params![id, user.0]).map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn bind_temp(&self, temp: i64, perm: i64) -> StoreResult<bool> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE auth_keys SET perm_key_id = ?2 WHERE id = ?1 AND expires_at IS NOT NULL AND perm_key_id IS NULL
                        AND EXISTS (SELECT 1 FROM auth_keys p WHERE p.id = ?2 AND p.expires_at IS NULL)",
                    params![temp, perm],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn drop_temp_keys(&self, perm: i64, except: &[i64]) -> StoreResult<Vec<i64>> {
        let except = except.to_vec();
        self.write(move |conn| {
            let mut st = conn.prepare_cached("SELECT id FROM auth_keys WHERE perm_key_id = ?1").map_err(backend)?;
            let bound = st.query_map([perm], |r| r.get(0)).map_err(backend)?.collect::<Result<Vec<i64>, _>>().map_err(backend)?;
            let mut gone = vec![];
            for id in bound.into_iter().filter(|id| !except.contains(id)) {
                conn.execute("DELETE FROM auth_keys WHERE id = ?1", [id]).map_err(backend)?;
                gone.push(id);
            }
            Ok(gone)
        })
        .await
    }

    async fn stale_sessions(&self, now: i64, limit: usize) -> StoreResult<Vec<(i64, UserId)>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT k.id, k.user_id FROM auth_keys k JOIN users u ON u.id = k.user_id
                     WHERE k.last_used_at < ?1 - u.session_ttl_days * 86400 LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = st.query_map(params![now, limit as i64], |r| Ok((r.get(0)?, UserId(r.get(1)?)))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn session_ttl(&self, user: UserId) -> StoreResult<i32> {
        self.read(move |conn| {
            conn.query_row("SELECT session_ttl_days FROM users WHERE id = ?1", [user.0], |r| r.get(0)).optional().map(|d| d.unwrap_or(180)).map_err(backend)
        })
        .await
    }

    async fn set_session_ttl(&self, user: UserId, days: i32) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("UPDATE users SET session_ttl_days = ?2 WHERE id = ?1", params![user.0, days]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn touch_key(&self, id: i64, at: i64) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("UPDATE auth_keys SET last_used_at = ?2 WHERE id = ?1", params![id, at]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn purge_keys(&self, unused_before: i64, now: i64, unbound_per_addr: usize) -> StoreResult<usize> {
        self.write(move |conn| {
            let a = conn.execute("DELETE FROM auth_keys WHERE user_id IS NULL AND last_used_at < ?1", [unused_before]).map_err(backend)?;
            let b = conn.execute("DELETE FROM auth_keys WHERE expires_at IS NOT NULL AND expires_at < ?1", [now]).map_err(backend)?;
            // Past the cap, an address's least recently used keys that never logged in go.
            let c = conn
                .execute(
                    "DELETE FROM auth_keys WHERE id IN (
                        SELECT id FROM (
                            SELECT id, ROW_NUMBER() OVER (PARTITION BY addr ORDER BY last_used_at DESC, id DESC) AS n
                            FROM auth_keys WHERE user_id IS NULL AND addr != ''
                        ) WHERE n > ?1)",
                    [unbound_per_addr as i64],
                )
                .map_err(backend)?;
            Ok(a + b + c)
        })
        .await
    }

    async fn set_client_info(&self, id: i64, c: ClientInfo) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE auth_keys SET layer = ?2, api_id = ?3, device_model = ?4, system_version = ?5, app_version = ?6,
                        system_lang_code = ?7, lang_pack = ?8, lang_code = ?9 WHERE id = ?1",
                params![id, c.layer, c.api_id, c.device_model, c.system_version, c.app_version, c.system_lang_code, c.lang_pack, c.lang_code],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }
}
