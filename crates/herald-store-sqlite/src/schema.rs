//! Versioned schema migrations. Each entry runs once, in order, inside a transaction;
//! `PRAGMA user_version` records how far a database has come. Never edit a shipped entry:
//! append a new one.

use rusqlite::Connection;

pub const MIGRATIONS: &[&str] = &[
    // 1: accounts, auth keys, login codes, message boxes with their pts logs.
    r#"
    CREATE TABLE auth_keys (
        id INTEGER PRIMARY KEY,
        key BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        user_id INTEGER,
        layer INTEGER, api_id INTEGER, device_model TEXT, system_version TEXT,
        app_version TEXT, system_lang_code TEXT, lang_pack TEXT, lang_code TEXT
    );
    CREATE INDEX auth_keys_user ON auth_keys(user_id);

    CREATE TABLE user_seq (dc INTEGER PRIMARY KEY, next INTEGER NOT NULL);
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        phone TEXT NOT NULL UNIQUE,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        username TEXT,
        username_lower TEXT UNIQUE,
        about TEXT NOT NULL DEFAULT '',
        home_dc INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        is_service INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO users (id, phone, first_name, last_name, about, home_dc, created_at, is_service)
        VALUES (777000, '42777', 'Telegram', '', 'Service notifications', 0, 0, 1);

    CREATE TABLE login_codes (
        phone TEXT NOT NULL, hash TEXT NOT NULL, code TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL, verified INTEGER NOT NULL,
        PRIMARY KEY (phone, hash)
    );
    CREATE INDEX login_codes_time ON login_codes(phone, created_at);

    -- One box per user: its pts and its next message id.
    CREATE TABLE boxes (owner INTEGER PRIMARY KEY, pts INTEGER NOT NULL, next_msg_id INTEGER NOT NULL);

    -- `peer` is a marked peer id (users positive; chats and channels will be negative).
    CREATE TABLE messages (
        owner INTEGER NOT NULL, id INTEGER NOT NULL, logical_id INTEGER NOT NULL,
        peer INTEGER NOT NULL, from_id INTEGER NOT NULL, out INTEGER NOT NULL,
        date INTEGER NOT NULL, text TEXT NOT NULL, entities TEXT NOT NULL,
        reply_to INTEGER, edit_date INTEGER, random_id INTEGER, pts INTEGER NOT NULL,
        PRIMARY KEY (owner, id)
    ) WITHOUT ROWID;
    CREATE INDEX messages_dialog ON messages(owner, peer, id);
    CREATE INDEX messages_logical ON messages(logical_id);
    CREATE UNIQUE INDEX messages_random ON messages(owner, random_id) WHERE random_id IS NOT NULL;

    CREATE TABLE dialogs (
        owner INTEGER NOT NULL, peer INTEGER NOT NULL,
        top_message INTEGER NOT NULL, top_date INTEGER NOT NULL,
        read_inbox_max_id INTEGER NOT NULL DEFAULT 0,
        read_outbox_max_id INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (owner, peer)
    ) WITHOUT ROWID;
    CREATE INDEX dialogs_order ON dialogs(owner, top_date, top_message);

    -- The pts log getDifference reads: one row per pts-advancing change of a box.
    CREATE TABLE updates (
        owner INTEGER NOT NULL, pts INTEGER NOT NULL, pts_count INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (owner, pts)
    ) WITHOUT ROWID;
    "#,
    // 2: wrong login codes per phone, for the daily failure budget.
    r#"
    CREATE TABLE login_failures (phone TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX login_failures_phone ON login_failures(phone, at);
    "#,
    // 3: the front door (docs/security.md): the key exchange's first salt and each key's
    // last use (unused keys are collected); login codes and failures remember the auth key
    // and address that made them, so limits count per address and key, not per phone alone;
    // time indexes for the scheduled purge.
    r#"
    ALTER TABLE auth_keys ADD COLUMN first_salt INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE auth_keys ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
    UPDATE auth_keys SET last_used_at = created_at;
    CREATE INDEX auth_keys_unbound ON auth_keys(last_used_at) WHERE user_id IS NULL;
    CREATE INDEX auth_keys_expiring ON auth_keys(expires_at) WHERE expires_at IS NOT NULL;

    ALTER TABLE login_codes ADD COLUMN key_id INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE login_codes ADD COLUMN addr TEXT NOT NULL DEFAULT '';
    CREATE INDEX login_codes_phone_addr ON login_codes(phone, addr, created_at);
    CREATE INDEX login_codes_addr ON login_codes(addr, created_at);
    CREATE INDEX login_codes_created ON login_codes(created_at);

    ALTER TABLE login_failures ADD COLUMN addr TEXT NOT NULL DEFAULT '';
    ALTER TABLE login_failures ADD COLUMN key_id INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX login_failures_phone_addr ON login_failures(phone, addr, at);
    CREATE INDEX login_failures_phone_key ON login_failures(phone, key_id, at);
    CREATE INDEX login_failures_at ON login_failures(at);
    "#,
    // 4: groups and channels. A channel's messages live once in its own box (owner = its
    // marked id, -(10^12 + id)); basic groups' messages in each member's box. Counters
    // replace per-request COUNT(*): dialogs keep their unread count; channel boxes keep their
    // top message, and a member's unread count is the ids above their read mark minus the
    // deleted ones (`box_deleted`).
    r#"
    ALTER TABLE messages ADD COLUMN action TEXT;
    ALTER TABLE messages ADD COLUMN post INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN post_author TEXT;
    DROP INDEX messages_random;
    CREATE UNIQUE INDEX messages_random ON messages(owner, random_id, from_id) WHERE random_id IS NOT NULL;

    ALTER TABLE dialogs ADD COLUMN unread_count INTEGER NOT NULL DEFAULT 0;
    UPDATE dialogs SET unread_count = (SELECT COUNT(*) FROM messages m
        WHERE m.owner = dialogs.owner AND m.peer = dialogs.peer AND m.out = 0 AND m.id > dialogs.read_inbox_max_id);

    ALTER TABLE boxes ADD COLUMN top_message INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE boxes ADD COLUMN top_date INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE groups (
        id INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,
        title TEXT NOT NULL, about TEXT NOT NULL,
        username TEXT, username_lower TEXT UNIQUE,
        creator INTEGER NOT NULL, date INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1,
        participants_count INTEGER NOT NULL DEFAULT 0, admins_count INTEGER NOT NULL DEFAULT 0,
        kicked_count INTEGER NOT NULL DEFAULT 0, banned_count INTEGER NOT NULL DEFAULT 0,
        signatures INTEGER NOT NULL DEFAULT 0, slowmode_seconds INTEGER NOT NULL DEFAULT 0,
        default_banned INTEGER NOT NULL DEFAULT 0, default_banned_until INTEGER NOT NULL DEFAULT 0,
        pinned_msg_id INTEGER, migrated_from INTEGER, migrated_to INTEGER,
        deleted INTEGER NOT NULL DEFAULT 0
    );

    -- role: 0 creator, 1 admin, 2 member, 3 restricted, 4 kicked, 5 left (model::Role).
    CREATE TABLE members (
        grp INTEGER NOT NULL, user INTEGER NOT NULL, role INTEGER NOT NULL,
        admin_rights INTEGER NOT NULL DEFAULT 0,
        banned INTEGER NOT NULL DEFAULT 0, banned_until INTEGER NOT NULL DEFAULT 0,
        rank TEXT, actor INTEGER NOT NULL, date INTEGER NOT NULL,
        read_inbox_max_id INTEGER NOT NULL DEFAULT 0, last_post INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL,
        PRIMARY KEY (grp, user)
    ) WITHOUT ROWID;
    CREATE INDEX members_user ON members(user, role);
    CREATE INDEX members_order ON members(grp, role, seq);

    -- Deleted ids of channel boxes, for unread counts by id range.
    CREATE TABLE box_deleted (owner INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (owner, id)) WITHOUT ROWID;
    -- Who a message mentions, for unread-mention counters.
    CREATE TABLE mentions (
        owner INTEGER NOT NULL, user INTEGER NOT NULL, peer INTEGER NOT NULL, id INTEGER NOT NULL,
        PRIMARY KEY (owner, user, peer, id)
    ) WITHOUT ROWID;
    -- Views of broadcast posts, one per viewer.
    CREATE TABLE post_views (owner INTEGER NOT NULL, id INTEGER NOT NULL, user INTEGER NOT NULL, PRIMARY KEY (owner, id, user)) WITHOUT ROWID;
    CREATE TABLE view_counts (owner INTEGER NOT NULL, id INTEGER NOT NULL, views INTEGER NOT NULL, PRIMARY KEY (owner, id)) WITHOUT ROWID;

    CREATE TABLE invites (
        hash TEXT PRIMARY KEY, grp INTEGER NOT NULL, admin INTEGER NOT NULL, date INTEGER NOT NULL,
        expire_date INTEGER, usage_limit INTEGER, usage INTEGER NOT NULL DEFAULT 0,
        request_needed INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, title TEXT,
        permanent INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX invites_group ON invites(grp, admin, date);
    CREATE TABLE join_requests (
        grp INTEGER NOT NULL, user INTEGER NOT NULL, date INTEGER NOT NULL, invite TEXT NOT NULL,
        PRIMARY KEY (grp, user)
    ) WITHOUT ROWID;
    "#,
    // 5: who has read a supergroup how far, for its senders' read receipts: the highest
    // member read mark and whose it is, and the highest of anyone else (model::ReadTop).
    r#"
    ALTER TABLE groups ADD COLUMN read_top_user INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE groups ADD COLUMN read_top INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE groups ADD COLUMN read_second INTEGER NOT NULL DEFAULT 0;
    UPDATE groups SET
        read_top_user = COALESCE((SELECT user FROM members WHERE grp = groups.id ORDER BY read_inbox_max_id DESC, user LIMIT 1), 0),
        read_top = COALESCE((SELECT MAX(read_inbox_max_id) FROM members WHERE grp = groups.id), 0);
    UPDATE groups SET
        read_second = COALESCE((SELECT MAX(read_inbox_max_id) FROM members WHERE grp = groups.id AND user != groups.read_top_user), 0);
    "#,
    // 6: whom a message mentions (a JSON list of user ids; NULL for none), so that the
    // `mentioned` flag survives into history, not only into the live push. The `mentions`
    // table is the unread ones.
    r#"
    ALTER TABLE messages ADD COLUMN mentions TEXT;
    "#,
    // 7: who blocked whom (contacts.block), newest first in contacts.getBlocked.
    r#"
    CREATE TABLE blocked (
        user INTEGER NOT NULL, blocked INTEGER NOT NULL, date INTEGER NOT NULL,
        PRIMARY KEY (user, blocked)
    ) WITHOUT ROWID;
    CREATE INDEX blocked_order ON blocked(user, date, blocked);
    "#,
    // 8: dialogs marked unread by hand (messages.markDialogUnread): the account's own
    // dialogs, and a member's channel dialog.
    r#"
    ALTER TABLE dialogs ADD COLUMN unread_mark INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE members ADD COLUMN unread_mark INTEGER NOT NULL DEFAULT 0;
    "#,
    // 9: two-step verification: passwords (salts and SRP verifier, hint, recovery email and
    // the code last emailed), open SRP exchanges, and logins waiting for their password.
    r#"
    CREATE TABLE passwords (
        user_id INTEGER PRIMARY KEY,
        salt1 BLOB NOT NULL,
        salt2 BLOB NOT NULL,
        verifier BLOB NOT NULL,
        hint TEXT NOT NULL,
        email TEXT,
        pending_email TEXT,
        code TEXT,
        code_purpose INTEGER,
        code_expires_at INTEGER,
        code_attempts INTEGER,
        set_at INTEGER NOT NULL
    );
    CREATE TABLE srp_challenges (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        b BLOB NOT NULL,
        big_b BLOB NOT NULL,
        verifier BLOB NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX srp_challenges_expiry ON srp_challenges(expires_at);
    CREATE TABLE password_logins (
        key_id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    "#,
    // 10: address books. `contacts_target` answers "who has this user as a contact".
    r#"
    CREATE TABLE contacts (
        owner INTEGER NOT NULL,
        target INTEGER NOT NULL,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        phone TEXT NOT NULL,
        date INTEGER NOT NULL,
        PRIMARY KEY (owner, target)
    ) WITHOUT ROWID;
    CREATE INDEX contacts_target ON contacts(target, owner);
    "#,
    // 11: full-text search. One row per logical message (rowid = logical_id) with its text and
    // a token per box holding a copy (`o<user>` / `n<channel marked id without the sign>`), so
    // a search names its boxes in the same MATCH. Contentless: the text stays in `messages`.
    r#"
    CREATE VIRTUAL TABLE search USING fts5(text, owners, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');
    INSERT INTO search (rowid, text, owners)
        SELECT logical_id, MIN(text), group_concat(CASE WHEN owner >= 0 THEN 'o' || owner ELSE 'n' || (-owner) END, ' ')
        FROM messages WHERE text != '' GROUP BY logical_id;
    "#,
    // 12: forwarded messages' origin (JSON `Forward`).
    r#"
    ALTER TABLE messages ADD COLUMN fwd TEXT;
    "#,
    // 13: reactions: one per user and logical message, and a summary (JSON `Reactions`) on
    // every copy so reading messages needs no join.
    r#"
    CREATE TABLE reactions (
        logical_id INTEGER NOT NULL,
        user INTEGER NOT NULL,
        emoji TEXT NOT NULL,
        date INTEGER NOT NULL,
        PRIMARY KEY (logical_id, user)
    ) WITHOUT ROWID;
    CREATE INDEX reactions_recent ON reactions(logical_id, date);
    ALTER TABLE messages ADD COLUMN reactions TEXT;
    "#,
    // 14: what an owner sets on a dialog of either kind (account or channel): pin position
    // (0: not pinned; higher: nearer the top), folder (1: archive) and draft (JSON `Draft`).
    r#"
    CREATE TABLE dialog_state (
        owner INTEGER NOT NULL,
        peer INTEGER NOT NULL,
        pin_order INTEGER NOT NULL DEFAULT 0,
        folder INTEGER NOT NULL DEFAULT 0,
        draft TEXT,
        PRIMARY KEY (owner, peer)
    ) WITHOUT ROWID;
    "#,
    // 15: when each account last went offline.
    r#"
    ALTER TABLE users ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
    "#,
    // 16: self-deleting messages: a period per conversation (channels keep theirs under their
    // own box key), and each message's period and deletion time.
    r#"
    ALTER TABLE dialog_state ADD COLUMN ttl_period INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN ttl_period INTEGER;
    ALTER TABLE messages ADD COLUMN expires_at INTEGER;
    CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL;
    "#,
    // 17: scheduled messages, with a per-owner id sequence.
    r#"
    CREATE TABLE scheduled (
        owner INTEGER NOT NULL,
        id INTEGER NOT NULL,
        peer INTEGER NOT NULL,
        text TEXT NOT NULL,
        entities TEXT NOT NULL,
        reply_to INTEGER,
        random_id INTEGER NOT NULL,
        date INTEGER NOT NULL,
        PRIMARY KEY (owner, id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX scheduled_random ON scheduled(owner, random_id);
    CREATE INDEX scheduled_due ON scheduled(date);
    CREATE TABLE scheduled_seq (owner INTEGER PRIMARY KEY, next INTEGER NOT NULL);
    "#,
    // 18: privacy settings (JSON `Privacy`; NULL: Telegram's defaults).
    r#"
    ALTER TABLE users ADD COLUMN privacy TEXT;
    "#,
    // 19: how many days an account's sessions may go unused (`account.setAuthorizationTTL`).
    r#"
    ALTER TABLE users ADD COLUMN session_ttl_days INTEGER NOT NULL DEFAULT 180;
    "#,
    // 20: how far back each box's pts log was trimmed (a difference from before is too long).
    r#"
    CREATE TABLE log_floor (owner INTEGER PRIMARY KEY, pts INTEGER NOT NULL);
    "#,
    // 21: open SRP exchanges by account (each account keeps only its newest few); scheduled
    // messages a sender has claimed (`sending`: being sent, not to be deleted meanwhile).
    r#"
    CREATE INDEX srp_challenges_user ON srp_challenges(user_id, expires_at);
    ALTER TABLE scheduled ADD COLUMN sending INTEGER NOT NULL DEFAULT 0;
    "#,
    // 22: deleted accounts, and how long an account may stay inactive before it is deleted.
    r#"
    ALTER TABLE users ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN account_ttl_days INTEGER NOT NULL DEFAULT 365;
    "#,
    // 23: where each auth key was made, so keys that never log in are bounded per address.
    r#"
    ALTER TABLE auth_keys ADD COLUMN addr TEXT NOT NULL DEFAULT '';
    CREATE INDEX auth_keys_unbound_addr ON auth_keys(addr, last_used_at) WHERE user_id IS NULL;
    "#,
    // 24: temporary keys bound to permanent ones (perfect forward secrecy).
    r#"
    ALTER TABLE auth_keys ADD COLUMN perm_key_id INTEGER;
    CREATE INDEX auth_keys_perm ON auth_keys(perm_key_id) WHERE perm_key_id IS NOT NULL;
    "#,
    // 25: the auto-delete period an account gives its new private chats
    // (`messages.setDefaultHistoryTTL`).
    r#"
    ALTER TABLE users ADD COLUMN default_history_ttl INTEGER NOT NULL DEFAULT 0;
    "#,
    // 26: files. Their bytes live in the blob store (`blobs.rs`), named by SHA-256; a message
    // copies the metadata it shows (`messages.media`), and `message_files` says which copies
    // carry which file, for access checks (written in the messages' own transaction).
    r#"
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        owner INTEGER NOT NULL,
        blob TEXT NOT NULL,
        size INTEGER NOT NULL,
        mime TEXT NOT NULL,
        date INTEGER NOT NULL,
        attributes TEXT NOT NULL
    );
    CREATE INDEX files_blob ON files(blob);
    CREATE TABLE message_files (
        owner INTEGER NOT NULL, msg_id INTEGER NOT NULL, file_id INTEGER NOT NULL,
        PRIMARY KEY (owner, msg_id, file_id)
    ) WITHOUT ROWID;
    CREATE INDEX message_files_file ON message_files(file_id, owner);
    ALTER TABLE messages ADD COLUMN media TEXT;
    "#,
    // 27: a photo's sizes (JSON), each its own blob.
    r#"
    ALTER TABLE files ADD COLUMN sizes TEXT NOT NULL DEFAULT '[]';
    "#,
    // 28: albums: the id the messages of one `sendMultiMedia` share.
    r#"
    ALTER TABLE messages ADD COLUMN grouped_id INTEGER;
    "#,
    // 29: profile photos: every one an account set (newest is current, kept in users.photo_id
    // so that rendering a user reads no other table).
    r#"
    ALTER TABLE users ADD COLUMN photo_id INTEGER;
    CREATE TABLE user_photos (
        user INTEGER NOT NULL, photo_id INTEGER NOT NULL, date INTEGER NOT NULL,
        PRIMARY KEY (user, photo_id)
    ) WITHOUT ROWID;
    CREATE INDEX user_photos_photo ON user_photos(photo_id);
    "#,
    // 30: space: every blob a file is stored as (the file itself and each photo size), for
    // collecting blobs nothing uses; files by owner, for the upload quota; chat photos.
    r#"
    CREATE TABLE file_blobs (
        blob TEXT NOT NULL, file_id INTEGER NOT NULL,
        PRIMARY KEY (blob, file_id)
    ) WITHOUT ROWID;
    CREATE INDEX file_blobs_file ON file_blobs(file_id);
    INSERT OR IGNORE INTO file_blobs SELECT blob, id FROM files;
    INSERT OR IGNORE INTO file_blobs SELECT json_extract(s.value, '$.blob'), f.id FROM files f, json_each(f.sizes) s;
    DROP INDEX files_blob;
    CREATE INDEX files_owner ON files(owner);
    ALTER TABLE groups ADD COLUMN photo_id INTEGER;
    CREATE INDEX groups_photo ON groups(photo_id) WHERE photo_id IS NOT NULL;
    "#,
    // 31: a photo's (or document thumbnail's) stripped thumbnail, read with users' and groups'
    // current photos.
    r#"
    ALTER TABLE files ADD COLUMN stripped BLOB;
    "#,
    // 32: scheduled media (the file indexed, so that collection keeps it until it is sent).
    r#"
    ALTER TABLE scheduled ADD COLUMN media TEXT;
    ALTER TABLE scheduled ADD COLUMN file_id INTEGER;
    CREATE INDEX scheduled_file ON scheduled(file_id) WHERE file_id IS NOT NULL;
    "#,
    // 33: no `dialogs_order`. Every message moved it (a delete and an insert, about 1.6 pages
    // per private message), and no read needed it: the dialog list is a union with the
    // groups' rows, sorted after the union, so it reads the owner's rows by the primary key.
    r#"
    DROP INDEX dialogs_order;
    "#,
    // 34: new messages leave the pts log. A stored copy keeps the pts it was given, so
    // `difference` reads new messages from the box itself; the log entry was a second row, on
    // a second page per copy, saying the same.
    r#"
    DELETE FROM updates WHERE data LIKE '{"NewMessage":%';
    "#,
    // 35: messages get a rowid. Without one, the table was a b-tree keyed by (owner, id) that
    // keeps whole rows (about 120 bytes) in its interior pages as well as its leaves, about 28
    // to a page: each copy went to its owner's end of the key range, a different leaf for
    // almost every copy, and the splits of those leaves rewrote interior pages of whole rows.
    // Measured under `pairs`, that table was 61% of the pages a commit wrote (1.8 pages per
    // copy). With a rowid, rows are stored in the order they are written, so one commit's
    // rows share a few pages, and (owner, id) is a unique index of entries about 10 bytes long.
    // SQLite's own advice is the same: no rowid only for rows under about a twentieth of a page.
    // Renaming the old table first is safe only because no trigger, view or foreign key names
    // `messages` (a rename would repoint them at the table dropped below). While it runs, the
    // rewrite needs free disk for about two more copies of the table (the file and the WAL);
    // afterwards the old table's pages stay in the file, free for new rows.
    r#"
    ALTER TABLE messages RENAME TO messages_keyed;
    CREATE TABLE messages (
        owner INTEGER NOT NULL, id INTEGER NOT NULL, logical_id INTEGER NOT NULL,
        peer INTEGER NOT NULL, from_id INTEGER NOT NULL, out INTEGER NOT NULL,
        date INTEGER NOT NULL, text TEXT NOT NULL, entities TEXT NOT NULL,
        reply_to INTEGER, edit_date INTEGER, random_id INTEGER, pts INTEGER NOT NULL,
        action TEXT, post INTEGER NOT NULL DEFAULT 0, post_author TEXT, mentions TEXT, fwd TEXT,
        reactions TEXT, ttl_period INTEGER, expires_at INTEGER, media TEXT, grouped_id INTEGER,
        PRIMARY KEY (owner, id)
    );
    INSERT INTO messages (owner, id, logical_id, peer, from_id, out, date, text, entities, reply_to, edit_date, random_id, pts,
            action, post, post_author, mentions, fwd, reactions, ttl_period, expires_at, media, grouped_id)
        SELECT owner, id, logical_id, peer, from_id, out, date, text, entities, reply_to, edit_date, random_id, pts,
            action, post, post_author, mentions, fwd, reactions, ttl_period, expires_at, media, grouped_id
        FROM messages_keyed;
    DROP TABLE messages_keyed;
    CREATE INDEX messages_dialog ON messages(owner, peer, id);
    CREATE INDEX messages_logical ON messages(logical_id);
    CREATE UNIQUE INDEX messages_random ON messages(owner, random_id, from_id) WHERE random_id IS NOT NULL;
    CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL;
    "#,
];

/// `PRAGMA application_id` of a Herald database ("HRLD"): a SQLite file without it (and
/// with a schema) belongs to something else.
pub const APPLICATION_ID: i32 = 0x4852_4c44;

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<u32> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app != APPLICATION_ID {
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    if (current as usize) < MIGRATIONS.len() {
        // A migration that rewrites a table (35) leaves a WAL file as large as the table:
        // SQLite's automatic checkpoint copies it back at the commit, but the file keeps its
        // size until a later write starts the WAL over. Cut it back now.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(MIGRATIONS.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory database migrated up to and including migration `version`.
    fn at_version(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as u32).unwrap();
        conn
    }

    /// The read-tops migration seeds each group's read tops from its members' marks: the highest mark
    /// and whose it is, and the highest of anyone else.
    #[test]
    fn read_tops_are_seeded_from_existing_marks() {
        let mut conn = at_version(4); // up to and including groups and channels
        conn.execute_batch(
            "INSERT INTO groups (id, kind, title, about, creator, date) VALUES (7, 1, 't', '', 1, 0), (8, 1, 'empty', '', 1, 0);
             INSERT INTO members (grp, user, role, actor, date, read_inbox_max_id, seq) VALUES
                (7, 1, 0, 1, 0, 4, 1), (7, 2, 2, 1, 0, 9, 2), (7, 3, 2, 1, 0, 6, 3);",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len() as u32);
        let tops = |id: i64| {
            conn.query_row("SELECT read_top_user, read_top, read_second FROM groups WHERE id = ?1", [id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i32>(1)?, r.get::<_, i32>(2)?))
            })
            .unwrap()
        };
        assert_eq!(tops(7), (2, 9, 6));
        assert_eq!(tops(8), (0, 0, 0));
    }

    /// The search migration indexes existing messages once per logical message, tagged with
    /// every box holding a copy.
    #[test]
    fn search_index_is_filled_from_existing_messages() {
        let mut conn = at_version(10);
        conn.execute_batch(
            "INSERT INTO messages (owner, id, logical_id, peer, from_id, out, date, text, entities, pts) VALUES
                (1, 1, 77, 2, 1, 1, 0, 'Hello there', '[]', 1),
                (2, 1, 77, 1, 1, 0, 0, 'Hello there', '[]', 1),
                (-1000000000005, 1, 78, -1000000000005, 1, 1, 0, 'hello channel', '[]', 1),
                (1, 2, 79, 2, 1, 1, 0, '', '[]', 2);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let hits = |q: &str| -> Vec<i64> {
            let mut stmt = conn.prepare("SELECT rowid FROM search WHERE search MATCH ?1 ORDER BY rowid").unwrap();
            stmt.query_map([q], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(hits(r#"text : "hel"*"#), vec![77, 78]);
        assert_eq!(hits(r#"owners : ("o2") AND text : ("hello"*)"#), vec![77]);
        assert_eq!(hits(r#"owners : ("n1000000000005") AND text : ("hello"*)"#), vec![78]);
        assert_eq!(hits(r#"owners : ("o1")"#), vec![77], "messages without text are not indexed");
    }

    /// Migration 35 moves every message, every column, into the table with a rowid, and the
    /// key and the indexes hold as before.
    #[test]
    fn messages_keep_every_column_when_they_get_a_rowid() {
        let mut conn = at_version(34);
        conn.execute_batch(
            "INSERT INTO messages (owner, id, logical_id, peer, from_id, out, date, text, entities, reply_to, edit_date, random_id, pts,
                    action, post, post_author, mentions, fwd, reactions, ttl_period, expires_at, media, grouped_id) VALUES
                (1, 1, 77, 2, 1, 1, 10, 'hi', '[]', NULL, NULL, 555, 3, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                (2, 1, 77, 1, 1, 0, 10, 'hi', '[]', NULL, NULL, NULL, 3, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                (2, 2, 78, 1, 2, 1, 11, 'all', '[1]', 1, 12, 9, 4, '{}', 1, 'ann', '[1]', '{}', '{}', 60, 71, '{}', 5);",
        )
        .unwrap();
        let dump = |conn: &Connection| -> Vec<String> {
            let mut stmt = conn.prepare("SELECT quote(owner) || ',' || quote(id) || ',' || quote(logical_id) || ',' || quote(peer) || ',' || quote(from_id) || ',' || quote(out) || ',' || quote(date) || ',' || quote(text) || ',' || quote(entities) || ',' || quote(reply_to) || ',' || quote(edit_date) || ',' || quote(random_id) || ',' || quote(pts) || ',' || quote(action) || ',' || quote(post) || ',' || quote(post_author) || ',' || quote(mentions) || ',' || quote(fwd) || ',' || quote(reactions) || ',' || quote(ttl_period) || ',' || quote(expires_at) || ',' || quote(media) || ',' || quote(grouped_id) FROM messages ORDER BY owner, id").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        let old = dump(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(dump(&conn), old);
        let rowids: i64 = conn.query_row("SELECT COUNT(DISTINCT rowid) FROM messages", [], |r| r.get(0)).unwrap();
        assert_eq!(rowids, 3);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'messages' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, ["messages_dialog", "messages_expiry", "messages_logical", "messages_random", "sqlite_autoindex_messages_1"]);
        let dup = conn.execute(
            "INSERT INTO messages (owner, id, logical_id, peer, from_id, out, date, text, entities, pts) VALUES (2, 2, 80, 1, 1, 1, 0, '', '[]', 5)",
            [],
        );
        assert!(dup.is_err(), "(owner, id) stays unique");
        let dup = conn.execute("INSERT INTO messages (owner, id, logical_id, peer, from_id, out, date, text, entities, pts, random_id) VALUES (1, 9, 80, 2, 1, 1, 0, '', '[]', 5, 555)", []);
        assert!(dup.is_err(), "a sender's random id stays unique");
    }
}
