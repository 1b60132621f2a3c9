//! Basic groups and channels: descriptions, members with their counters, invite links and
//! join requests. The counters on `groups` move in the same transaction as the member rows.

use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::error::StoreError;
use herald_domain::model::*;
use herald_domain::store::{GroupStore, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

const GROUP_COLUMNS: &str = "id, kind, title, about, username, creator, date, version, participants_count, admins_count, kicked_count, banned_count,
    signatures, slowmode_seconds, default_banned, default_banned_until, pinned_msg_id, migrated_from, migrated_to, deleted, photo_id,
    (SELECT stripped FROM files WHERE files.id = groups.photo_id)";

fn group_from_row(r: &Row) -> rusqlite::Result<Group> {
    Ok(Group {
        id: GroupId(r.get(0)?),
        kind: GroupKind::from_code(r.get(1)?),
        title: r.get(2)?,
        about: r.get(3)?,
        username: r.get(4)?,
        creator: UserId(r.get(5)?),
        date: r.get(6)?,
        version: r.get(7)?,
        participants_count: r.get(8)?,
        admins_count: r.get(9)?,
        kicked_count: r.get(10)?,
        banned_count: r.get(11)?,
        signatures: r.get(12)?,
        slowmode_seconds: r.get(13)?,
        default_banned: BannedRights { bits: r.get(14)?, until: r.get(15)? },
        pinned_msg_id: r.get(16)?,
        migrated_from: r.get::<_, Option<i64>>(17)?.map(GroupId),
        migrated_to: r.get::<_, Option<i64>>(18)?.map(GroupId),
        deleted: r.get(19)?,
        photo_id: r.get(20)?,
        photo_stripped: r.get(21)?,
    })
}

const MEMBER_COLUMNS: &str = "grp, user, role, admin_rights, banned, banned_until, rank, actor, date, read_inbox_max_id, last_post";

fn member_from_row(r: &Row) -> rusqlite::Result<Member> {
    Ok(Member {
        group: GroupId(r.get(0)?),
        user: UserId(r.get(1)?),
        role: Role::from_code(r.get(2)?),
        admin_rights: AdminRights(r.get(3)?),
        banned: BannedRights { bits: r.get(4)?, until: r.get(5)? },
        rank: r.get(6)?,
        actor: UserId(r.get(7)?),
        date: r.get(8)?,
        read_inbox_max_id: r.get(9)?,
        last_post: r.get(10)?,
    })
}

fn get_group(conn: &Connection, id: GroupId) -> StoreResult<Option<Group>> {
    conn.prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1"))
        .map_err(backend)?
        .query_row([id.0], group_from_row)
        .optional()
        .map_err(backend)
}

fn get_member(conn: &Connection, group: GroupId, user: UserId) -> StoreResult<Option<Member>> {
    conn.prepare_cached(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE grp = ?1 AND user = ?2"))
        .map_err(backend)?
        .query_row(params![group.0, user.0], member_from_row)
        .optional()
        .map_err(backend)
}

/// The counters a role contributes to: (participants, admins, kicked, banned).
fn counts(role: Option<Role>) -> [i32; 4] {
    match role {
        Some(Role::Creator) | Some(Role::Admin) => [1, 1, 0, 0],
        Some(Role::Member) => [1, 0, 0, 0],
        Some(Role::Restricted) => [1, 0, 0, 1],
        Some(Role::Kicked) => [0, 0, 1, 0],
        Some(Role::Left) | None => [0, 0, 0, 0],
    }
}

fn set_member(conn: &Connection, m: &Member) -> StoreResult<Option<Member>> {
    let old = get_member(conn, m.group, m.user)?;
    // `seq` orders members by when they (re)joined, for "recent" listings.
    let rejoined = old.as_ref().is_none_or(|o| o.role.is_member() != m.role.is_member());
    conn.prepare_cached(
        "INSERT INTO members (grp, user, role, admin_rights, banned, banned_until, rank, actor, date, read_inbox_max_id, last_post, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, (SELECT COALESCE(MAX(seq), 0) + 1 FROM members WHERE grp = ?1))
         ON CONFLICT(grp, user) DO UPDATE SET role = excluded.role, admin_rights = excluded.admin_rights, banned = excluded.banned,
             banned_until = excluded.banned_until, rank = excluded.rank, actor = excluded.actor, date = excluded.date,
             seq = CASE WHEN ?12 THEN excluded.seq ELSE seq END",
    )
    .map_err(backend)?
    .execute(params![
        m.group.0,
        m.user.0,
        m.role.code(),
        m.admin_rights.0,
        m.banned.bits,
        m.banned.until,
        m.rank,
        m.actor.0,
        m.date,
        m.read_inbox_max_id,
        m.last_post,
        rejoined
    ])
    .map_err(backend)?;
    let (a, b) = (counts(old.as_ref().map(|o| o.role)), counts(Some(m.role)));
    let d: Vec<i32> = (0..4).map(|i| b[i] - a[i]).collect();
    if d.iter().any(|x| *x != 0) {
        conn.prepare_cached(
            "UPDATE groups SET participants_count = participants_count + ?2, admins_count = admins_count + ?3,
                 kicked_count = kicked_count + ?4, banned_count = banned_count + ?5 WHERE id = ?1",
        )
        .map_err(backend)?
        .execute(params![m.group.0, d[0], d[1], d[2], d[3]])
        .map_err(backend)?;
    }
    Ok(old)
}

const INVITE_COLUMNS: &str = "hash, grp, admin, date, expire_date, usage_limit, usage, request_needed, revoked, title, permanent";

fn invite_from_row(r: &Row) -> rusqlite::Result<Invite> {
    Ok(Invite {
        hash: r.get(0)?,
        group: GroupId(r.get(1)?),
        admin: UserId(r.get(2)?),
        date: r.get(3)?,
        expire_date: r.get(4)?,
        usage_limit: r.get(5)?,
        usage: r.get(6)?,
        request_needed: r.get(7)?,
        revoked: r.get(8)?,
        title: r.get(9)?,
        permanent: r.get(10)?,
    })
}

/// `LIKE` pattern for a substring search, with the wildcards in `q` escaped.
fn like(q: &str) -> String {
    let esc: String = q.to_lowercase().chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    format!("%{esc}%")
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, new: NewGroup, members: Vec<Member>) -> StoreResult<Group> {
        self.write(move |conn| {
            let id: i64 = conn
                .prepare_cached("INSERT INTO groups (kind, title, about, creator, date) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id")
                .map_err(backend)?
                .query_row(params![new.kind.code(), new.title, new.about, new.creator.0, new.date], |r| r.get(0))
                .map_err(backend)?;
            for mut m in members {
                m.group = GroupId(id);
                set_member(conn, &m)?;
            }
            get_group(conn, GroupId(id))?.ok_or_else(|| StoreError::Backend("created group vanished".into()))
        })
        .await
    }

    async fn group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        self.read(move |conn| get_group(conn, id)).await
    }

    async fn groups(&self, ids: &[GroupId]) -> StoreResult<Vec<Group>> {
        // Most answers name no group: no trip to a reader for nothing.
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let ids = ids.to_vec();
        self.lookup_keys(ids.len(), move |conn| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(get_group(conn, id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn group_by_username(&self, username: &str) -> StoreResult<Option<Group>> {
        let name = username.to_lowercase();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE username_lower = ?1 AND deleted = 0"))
                .map_err(backend)?
                .query_row([name], group_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn groups_by_username_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<Group>> {
        let (low, high) = crate::accounts::prefix_range(prefix);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {GROUP_COLUMNS} FROM groups WHERE username_lower >= ?1 AND username_lower < ?2 AND deleted = 0 ORDER BY username_lower LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map(params![low, high, limit as i64], group_from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn update_group(&self, g: &Group) -> StoreResult<()> {
        let g = g.clone();
        self.write(move |conn| {
            // One namespace with users' usernames, checked in the writer's transaction.
            if let Some(name) = &g.username {
                let taken = conn
                    .prepare_cached(
                        "SELECT 1 FROM users WHERE username_lower = ?1
                         AND NOT EXISTS (SELECT 1 FROM groups WHERE id = ?2 AND username_lower = ?1)",
                    )
                    .map_err(backend)?
                    .exists(params![name.to_lowercase(), g.id.0])
                    .map_err(backend)?;
                if taken {
                    return Err(StoreError::Conflict("username"));
                }
            }
            let r = conn.execute(
                "UPDATE groups SET title = ?2, about = ?3, username = ?4, username_lower = ?5, version = version + 1, signatures = ?6,
                     slowmode_seconds = ?7, default_banned = ?8, default_banned_until = ?9, pinned_msg_id = ?10, migrated_from = ?11,
                     migrated_to = ?12, deleted = ?13, kind = ?14, photo_id = ?15
                 WHERE id = ?1",
                params![
                    g.id.0,
                    g.title,
                    g.about,
                    g.username,
                    g.username.as_ref().map(|u| u.to_lowercase()),
                    g.signatures,
                    g.slowmode_seconds,
                    g.default_banned.bits,
                    g.default_banned.until,
                    g.pinned_msg_id,
                    g.migrated_from.map(|x| x.0),
                    g.migrated_to.map(|x| x.0),
                    g.deleted,
                    g.kind.code(),
                    g.photo_id
                ],
            );
            match r {
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => Err(StoreError::Conflict("username")),
                Err(e) => Err(backend(e)),
                Ok(_) => Ok(()),
            }
        })
        .await
    }

    async fn member(&self, group: GroupId, user: UserId) -> StoreResult<Option<Member>> {
        self.lookup(move |conn| get_member(conn, group, user)).await
    }

    async fn members(&self, group: GroupId, filter: &MemberFilter, offset: i32, limit: i32) -> StoreResult<(Vec<Member>, i32)> {
        let filter = filter.clone();
        self.read(move |conn| {
            let cols = MEMBER_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ");
            let (cond, q) = match &filter {
                MemberFilter::Recent => ("m.role <= 3", None),
                MemberFilter::Admins => ("m.role <= 1", None),
                MemberFilter::Kicked(q) => ("m.role = 4", Some(q.clone())),
                MemberFilter::Banned(q) => ("m.role = 3", Some(q.clone())),
                MemberFilter::Search(q) => ("m.role <= 3", Some(q.clone())),
            };
            let q = q.filter(|q| !q.is_empty()).map(|q| like(&q));
            let search = if q.is_some() {
                " AND (lower(u.first_name) LIKE ?2 ESCAPE '\\' OR lower(u.last_name) LIKE ?2 ESCAPE '\\' OR u.username_lower LIKE ?2 ESCAPE '\\')"
            } else {
                " AND ?2 IS NULL"
            };
            let from = format!("FROM members m JOIN users u ON u.id = m.user WHERE m.grp = ?1 AND {cond}{search}");
            let count: i32 =
                conn.prepare_cached(&format!("SELECT COUNT(*) {from}")).map_err(backend)?.query_row(params![group.0, q], |r| r.get(0)).map_err(backend)?;
            let rows = conn
                .prepare_cached(&format!("SELECT {cols} {from} ORDER BY m.role != 0, m.seq DESC LIMIT ?3 OFFSET ?4"))
                .map_err(backend)?
                .query_map(params![group.0, q, limit, offset.max(0)], member_from_row)
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            Ok((rows, count))
        })
        .await
    }

    async fn member_ids(&self, group: GroupId) -> StoreResult<Vec<UserId>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT user FROM members WHERE grp = ?1 AND role <= 3")
                .map_err(backend)?
                .query_map([group.0], |r| Ok(UserId(r.get(0)?)))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn members_by_usernames(&self, group: GroupId, usernames: &[String]) -> StoreResult<Vec<UserId>> {
        let names = usernames.to_vec();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached("SELECT m.user FROM users u JOIN members m ON m.grp = ?1 AND m.user = u.id AND m.role <= 3 WHERE u.username_lower = ?2")
                .map_err(backend)?;
            let mut found = Vec::new();
            for name in &names {
                if let Some(u) = st.query_row(params![group.0, name], |r| r.get(0)).optional().map_err(backend)? {
                    found.push(UserId(u));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn set_member(&self, member: Member) -> StoreResult<Option<Member>> {
        self.write(move |conn| set_member(conn, &member)).await
    }

    async fn common_groups(&self, a: UserId, b: UserId, before_id: i64, limit: usize) -> StoreResult<Vec<GroupId>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT ma.grp FROM members ma JOIN members mb ON mb.grp = ma.grp AND mb.user = ?2 AND mb.role <= 3
                     JOIN groups g ON g.id = ma.grp AND g.deleted = 0 AND g.migrated_to IS NULL
                 WHERE ma.user = ?1 AND ma.role <= 3 AND (?3 <= 0 OR ma.grp < ?3) ORDER BY ma.grp DESC LIMIT ?4",
            )
            .map_err(backend)?
            .query_map(params![a.0, b.0, before_id, limit as i64], |r| Ok(GroupId(r.get(0)?)))
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)
        })
        .await
    }

    async fn user_groups(&self, user: UserId, channels_only: bool) -> StoreResult<Vec<GroupId>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT m.grp FROM members m JOIN groups g ON g.id = m.grp WHERE m.user = ?1 AND m.role <= 3 AND (g.kind != 0 OR NOT ?2)")
                .map_err(backend)?
                .query_map(params![user.0, channels_only], |r| Ok(GroupId(r.get(0)?)))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn set_read(&self, group: GroupId, user: UserId, max_id: i32, receipt: bool) -> StoreResult<Option<ReadMove>> {
        self.write(move |conn| {
            let n = conn
                .prepare_cached("UPDATE members SET read_inbox_max_id = ?3, unread_mark = 0 WHERE grp = ?1 AND user = ?2 AND read_inbox_max_id < ?3")
                .map_err(backend)?
                .execute(params![group.0, user.0, max_id])
                .map_err(backend)?;
            if n == 0 {
                return Ok(None);
            }
            conn.prepare_cached("DELETE FROM mentions WHERE owner = ?1 AND user = ?2 AND id <= ?3")
                .map_err(backend)?
                .execute(params![BoxId::Channel(group).key(), user.0, max_id])
                .map_err(backend)?;
            let before = conn
                .prepare_cached("SELECT read_top_user, read_top, read_second FROM groups WHERE id = ?1")
                .map_err(backend)?
                .query_row([group.0], |r| Ok(ReadTop { user: UserId(r.get(0)?), top: r.get(1)?, second: r.get(2)? }))
                .map_err(backend)?;
            let after = if receipt { before.raised(user, max_id) } else { before };
            if after != before {
                conn.prepare_cached("UPDATE groups SET read_top_user = ?2, read_top = ?3, read_second = ?4 WHERE id = ?1")
                    .map_err(backend)?
                    .execute(params![group.0, after.user.0, after.top, after.second])
                    .map_err(backend)?;
            }
            Ok(Some(ReadMove { max_id, before, after }))
        })
        .await
    }

    async fn set_last_post(&self, group: GroupId, user: UserId, date: i32) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("UPDATE members SET last_post = ?3 WHERE grp = ?1 AND user = ?2", params![group.0, user.0, date]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn put_invite(&self, i: &Invite) -> StoreResult<()> {
        let i = i.clone();
        self.write(move |conn| {
            conn.execute(
                &format!("INSERT OR REPLACE INTO invites ({INVITE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![i.hash, i.group.0, i.admin.0, i.date, i.expire_date, i.usage_limit, i.usage, i.request_needed, i.revoked, i.title, i.permanent],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn invite(&self, hash: &str) -> StoreResult<Option<Invite>> {
        let hash = hash.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {INVITE_COLUMNS} FROM invites WHERE hash = ?1"))
                .map_err(backend)?
                .query_row([hash], invite_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn invites(&self, group: GroupId, admin: Option<UserId>, revoked: bool, limit: i32) -> StoreResult<Vec<Invite>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE grp = ?1 AND (?2 IS NULL OR admin = ?2) AND revoked = ?3 ORDER BY date DESC, hash LIMIT ?4"
            ))
            .map_err(backend)?
            .query_map(params![group.0, admin.map(|a| a.0), revoked, limit], invite_from_row)
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)
        })
        .await
    }

    async fn use_invite(&self, hash: &str, now: i32) -> StoreResult<bool> {
        let hash = hash.to_string();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE invites SET usage = usage + 1 WHERE hash = ?1 AND revoked = 0 AND (expire_date IS NULL OR expire_date > ?2)
                         AND (usage_limit IS NULL OR usage < usage_limit)",
                    params![hash, now],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn put_join_request(&self, req: &JoinRequest) -> StoreResult<()> {
        let req = req.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO join_requests (grp, user, date, invite) VALUES (?1, ?2, ?3, ?4)",
                params![req.group.0, req.user.0, req.date, req.invite],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn join_requests(&self, group: GroupId) -> StoreResult<Vec<JoinRequest>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT grp, user, date, invite FROM join_requests WHERE grp = ?1 ORDER BY date DESC")
                .map_err(backend)?
                .query_map([group.0], |r| Ok(JoinRequest { group: GroupId(r.get(0)?), user: UserId(r.get(1)?), date: r.get(2)?, invite: r.get(3)? }))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn take_join_request(&self, group: GroupId, user: UserId) -> StoreResult<bool> {
        self.write(move |conn| {
            let n = conn.execute("DELETE FROM join_requests WHERE grp = ?1 AND user = ?2", params![group.0, user.0]).map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }
}
