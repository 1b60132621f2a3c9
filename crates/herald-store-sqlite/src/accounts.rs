use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::error::StoreError;
use herald_domain::model::{Contact, NewUser, SeenUser, User, UserId};
use herald_domain::store::{AccountStore, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

const USER_COLUMNS: &str =
    "id, phone, first_name, last_name, username, about, home_dc, created_at, is_service, last_seen, privacy, deleted, account_ttl_days, photo_id,
     (SELECT stripped FROM files WHERE files.id = users.photo_id)";

fn user_from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(r.get(0)?),
        phone: r.get(1)?,
        first_name: r.get(2)?,
        last_name: r.get(3)?,
        username: r.get(4)?,
        about: r.get(5)?,
        home_dc: r.get(6)?,
        created_at: r.get(7)?,
        is_service: r.get(8)?,
        last_seen: r.get(9)?,
        privacy: r.get::<_, Option<String>>(10)?.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or_default(),
        deleted: r.get(11)?,
        account_ttl_days: r.get(12)?,
        photo_id: r.get(13)?,
        photo_stripped: r.get(14)?,
    })
}

pub(crate) fn user_by_id(conn: &Connection, id: UserId) -> StoreResult<Option<User>> {
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))
        .map_err(backend)?
        .query_row([id.0], user_from_row)
        .optional()
        .map_err(backend)
}

/// The range of an index on lower-case names that holds the names starting with `prefix`
/// (usernames are ASCII, so the bound is the prefix with a character past `z` appended).
pub(crate) fn prefix_range(prefix: &str) -> (String, String) {
    let low = prefix.to_ascii_lowercase();
    let high = format!("{low}\u{7f}");
    (low, high)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        self.write(move |conn| {
            let seq: i64 = conn
                .query_row(
                    "INSERT INTO user_seq (dc, next) VALUES (?1, 2) ON CONFLICT(dc) DO UPDATE SET next = next + 1 RETURNING next - 1",
                    [new.home_dc],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let id = UserId::compose(new.home_dc, seq);
            conn.execute(
                "INSERT INTO users (id, phone, first_name, last_name, home_dc, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id.0, new.phone, new.first_name, new.last_name, new.home_dc, new.created_at],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("phone") } else { backend(e) })?;
            user_by_id(conn, id)?.ok_or_else(|| StoreError::Backend("inserted user vanished".into()))
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let generation = match self.inner.seen.user(id.0) {
            Ok(user) => return Ok(Some(user)),
            Err(g) => g,
        };
        let user = self.lookup(move |conn| user_by_id(conn, id)).await?;
        if let Some(u) = &user {
            self.inner.seen.fill_user(generation, u);
        }
        Ok(user)
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let (n, ids): (usize, Vec<i64>) = (ids.len(), ids.iter().map(|u| u.0).collect());
        let f = move |conn: &Connection| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1")).map_err(backend)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(u) = stmt.query_row([id], user_from_row).optional().map_err(backend)? {
                    out.push(u);
                }
            }
            Ok(out)
        };
        self.lookup_keys(n, f).await
    }

    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>> {
        let phone = phone.to_string();
        self.read(move |conn| conn.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE phone = ?1"), [phone], user_from_row).optional().map_err(backend))
            .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let lower = username.to_ascii_lowercase();
        self.read(move |conn| {
            conn.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE username_lower = ?1"), [lower], user_from_row).optional().map_err(backend)
        })
        .await
    }

    async fn set_username(&self, id: UserId, username: Option<&str>) -> StoreResult<()> {
        let username = username.map(str::to_string);
        self.write(move |conn| {
            let lower = username.as_ref().map(|u| u.to_ascii_lowercase());
            // Users and public channels share one namespace; checked here, in the writer's
            // transaction, so a channel cannot take the name between the check and the write.
            if let Some(l) = &lower {
                let taken =
                    conn.prepare_cached("SELECT 1 FROM groups WHERE username_lower = ?1 AND deleted = 0").map_err(backend)?.exists([l]).map_err(backend)?;
                if taken {
                    return Err(StoreError::Conflict("username"));
                }
            }
            conn.execute("UPDATE users SET username = ?2, username_lower = ?3 WHERE id = ?1", params![id.0, username, lower]).map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("username")
                } else {
                    backend(e)
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn users_seen_by(&self, viewer: UserId, ids: &[UserId]) -> StoreResult<Vec<SeenUser>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<i64> = ids.iter().map(|u| u.0).collect();
        // From memory when every one is kept (see `seen.rs`).
        let generation = match self.inner.seen.get(viewer.0, &ids) {
            Ok(seen) => return Ok(seen),
            Err(g) => g,
        };
        let seen = self
            .lookup_keys(ids.len(), move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT u.id, u.phone, u.first_name, u.last_name, u.username, u.about, u.home_dc, u.created_at, u.is_service, u.last_seen, u.privacy,
                            u.deleted, u.account_ttl_days, u.photo_id, (SELECT stripped FROM files f WHERE f.id = u.photo_id),
                            c.first_name, c.last_name, c.phone, c.date,
                            EXISTS (SELECT 1 FROM contacts r WHERE r.owner = u.id AND r.target = ?2),
                            EXISTS (SELECT 1 FROM blocked b WHERE b.user = u.id AND b.blocked = ?2)
                     FROM users u LEFT JOIN contacts c ON c.owner = ?2 AND c.target = u.id
                     WHERE u.id = ?1",
                    )
                    .map_err(backend)?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let row = stmt
                        .query_row([id, viewer.0], |r| {
                            let user = user_from_row(r)?;
                            // Columns 0–14 are the user's, then the contact entry, then the reverse link
                            // and the block.
                            let contact = match r.get::<_, Option<String>>(15)? {
                                Some(first_name) => {
                                    Some(Contact { owner: viewer, target: user.id, first_name, last_name: r.get(16)?, phone: r.get(17)?, date: r.get(18)? })
                                }
                                None => None,
                            };
                            Ok(SeenUser { user, contact, has_viewer: r.get(19)?, blocked_viewer: r.get(20)? })
                        })
                        .optional()
                        .map_err(backend)?;
                    out.extend(row);
                }
                Ok(out)
            })
            .await?;
        self.inner.seen.fill(generation, viewer.0, &seen);
        Ok(seen)
    }

    async fn put_contact(&self, c: Contact) -> StoreResult<bool> {
        self.write(move |conn| {
            let existed = conn
                .prepare_cached("SELECT 1 FROM contacts WHERE owner = ?1 AND target = ?2")
                .map_err(backend)?
                .exists([c.owner.0, c.target.0])
                .map_err(backend)?;
            conn.execute(
                "INSERT OR REPLACE INTO contacts (owner, target, first_name, last_name, phone, date) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.owner.0, c.target.0, c.first_name, c.last_name, c.phone, c.date],
            )
            .map_err(backend)?;
            crate::seen::pair_changed(c.owner.0, c.target.0);
            Ok(!existed)
        })
        .await
    }

    async fn delete_contacts(&self, owner: UserId, targets: &[UserId]) -> StoreResult<Vec<UserId>> {
        let targets: Vec<i64> = targets.iter().map(|u| u.0).collect();
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached("DELETE FROM contacts WHERE owner = ?1 AND target = ?2").map_err(backend)?;
            let mut gone = vec![];
            for t in targets {
                if stmt.execute([owner.0, t]).map_err(backend)? > 0 {
                    crate::seen::pair_changed(owner.0, t);
                    gone.push(UserId(t));
                }
            }
            Ok(gone)
        })
        .await
    }

    async fn contacts(&self, owner: UserId) -> StoreResult<Vec<Contact>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT target, first_name, last_name, phone, date FROM contacts WHERE owner = ?1 ORDER BY date, target")
                .map_err(backend)?;
            let rows = stmt
                .query_map([owner.0], |r| {
                    Ok(Contact { owner, target: UserId(r.get(0)?), first_name: r.get(1)?, last_name: r.get(2)?, phone: r.get(3)?, date: r.get(4)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn set_privacy(&self, id: UserId, privacy: &herald_domain::privacy::Privacy) -> StoreResult<()> {
        let json = serde_json::to_string(privacy).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.write(move |conn| {
            conn.prepare_cached("UPDATE users SET privacy = ?2 WHERE id = ?1").map_err(backend)?.execute(params![id.0, json]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_account(&self, id: UserId) -> StoreResult<Vec<i64>> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE users SET deleted = 1, first_name = '', last_name = '', username = NULL, username_lower = NULL, about = '',
                        phone = 'deleted:' || id, privacy = NULL WHERE id = ?1 AND deleted = 0 AND is_service = 0",
                    [id.0],
                )
                .map_err(backend)?;
            if n == 0 {
                return Ok(vec![]);
            }
            conn.execute("DELETE FROM contacts WHERE owner = ?1", [id.0]).map_err(backend)?;
            crate::seen::all_relations_changed();
            conn.execute("DELETE FROM passwords WHERE user_id = ?1", [id.0]).map_err(backend)?;
            conn.execute("DELETE FROM srp_challenges WHERE user_id = ?1", [id.0]).map_err(backend)?;
            conn.execute("DELETE FROM scheduled WHERE owner = ?1", [id.0]).map_err(backend)?;
            let mut st = conn.prepare_cached("UPDATE auth_keys SET user_id = NULL WHERE user_id = ?1 RETURNING id").map_err(backend)?;
            let keys = st.query_map([id.0], |r| r.get(0)).map_err(backend)?.collect::<Result<Vec<i64>, _>>().map_err(backend)?;
            Ok(keys)
        })
        .await
    }

    async fn set_account_ttl(&self, id: UserId, days: i32) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("UPDATE users SET account_ttl_days = ?2 WHERE id = ?1", params![id.0, days]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn default_history_ttl(&self, id: UserId) -> StoreResult<i32> {
        self.read(move |conn| {
            Ok(conn.query_row("SELECT default_history_ttl FROM users WHERE id = ?1", [id.0], |r| r.get(0)).optional().map_err(backend)?.unwrap_or(0))
        })
        .await
    }

    async fn set_default_history_ttl(&self, id: UserId, period: i32) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("UPDATE users SET default_history_ttl = ?2 WHERE id = ?1", params![id.0, period]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn add_profile_photo(&self, user: UserId, photo_id: i64, date: i32) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("INSERT OR REPLACE INTO user_photos (user, photo_id, date) VALUES (?1, ?2, ?3)", params![user.0, photo_id, date]).map_err(backend)?;
            conn.execute("UPDATE users SET photo_id = ?2 WHERE id = ?1", params![user.0, photo_id]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn profile_photos(&self, user: UserId, limit: usize) -> StoreResult<Vec<(i64, i32)>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT photo_id, date FROM user_photos WHERE user = ?1 ORDER BY date DESC, photo_id DESC LIMIT ?2")
                .map_err(backend)?
                .query_map(params![user.0, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn delete_profile_photos(&self, user: UserId, ids: Vec<i64>) -> StoreResult<Vec<i64>> {
        self.write(move |conn| {
            let mut gone = Vec::new();
            for id in ids {
                if conn.execute("DELETE FROM user_photos WHERE user = ?1 AND photo_id = ?2", params![user.0, id]).map_err(backend)? > 0 {
                    gone.push(id);
                }
            }
            conn.execute(
                "UPDATE users SET photo_id = (SELECT photo_id FROM user_photos WHERE user = ?1 ORDER BY date DESC, photo_id DESC LIMIT 1) WHERE id = ?1",
                [user.0],
            )
            .map_err(backend)?;
            Ok(gone)
        })
        .await
    }

    async fn inactive_accounts(&self, now: i64, limit: usize) -> StoreResult<Vec<UserId>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT u.id FROM users u WHERE u.deleted = 0 AND u.is_service = 0
                       AND MAX(u.created_at, u.last_seen, COALESCE((SELECT MAX(k.last_used_at) FROM auth_keys k WHERE k.user_id = u.id), 0))
                           < ?1 - u.account_ttl_days * 86400
                     LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = st.query_map(params![now, limit as i64], |r| Ok(UserId(r.get(0)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn set_last_seen(&self, id: UserId, at: i64) -> StoreResult<()> {
        self.write(move |conn| {
            conn.prepare_cached("UPDATE users SET last_seen = ?2 WHERE id = ?1").map_err(backend)?.execute(params![id.0, at]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn contact_owners(&self, target: UserId, limit: usize) -> StoreResult<Vec<UserId>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT owner FROM contacts WHERE target = ?1 LIMIT ?2").map_err(backend)?;
            let rows = stmt.query_map(params![target.0, limit as i64], |r| Ok(UserId(r.get(0)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn users_by_username_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<User>> {
        let (low, high) = prefix_range(prefix);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE username_lower >= ?1 AND username_lower < ?2 ORDER BY username_lower LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map(params![low, high, limit as i64], user_from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn update_profile(&self, id: UserId, first: &str, last: &str, about: &str) -> StoreResult<()> {
        let (first, last, about) = (first.to_string(), last.to_string(), about.to_string());
        self.write(move |conn| {
            conn.execute("UPDATE users SET first_name = ?2, last_name = ?3, about = ?4 WHERE id = ?1", params![id.0, first, last, about]).map_err(backend)?;
            Ok(())
        })
        .await
    }
}
