//! Domain types. Plain data, no wire format.

use serde::{Deserialize, Serialize};

/// The service account that sends login codes, as on Telegram.
pub const SERVICE_USER_ID: UserId = UserId(777000);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId(pub i64);

/// Users are numbered per DC: `dc * 10^9 + sequence`, so a user's home DC is readable from
/// the id without a directory lookup (the service account 777000 is homed everywhere).
pub const USER_IDS_PER_DC: i64 = 1_000_000_000;

impl UserId {
    pub fn compose(dc: i32, seq: i64) -> Self {
        Self(dc as i64 * USER_IDS_PER_DC + seq)
    }
    pub fn home_dc(self) -> Option<i32> {
        (self.0 >= USER_IDS_PER_DC).then_some((self.0 / USER_IDS_PER_DC) as i32)
    }
}

/// The other side of a conversation. Only users exist so far; groups and channels come later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Peer {
    User(UserId),
}

impl Peer {
    pub fn user_id(self) -> UserId {
        match self {
            Peer::User(u) => u,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub phone: String,
    pub first_name: String,
    pub last_name: String,
    pub username: Option<String>,
    pub about: String,
    pub home_dc: i32,
    pub created_at: i64,
    /// The service account and, later, bots.
    pub is_service: bool,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub phone: String,
    pub first_name: String,
    pub last_name: String,
    pub home_dc: i32,
    pub created_at: i64,
}

/// Formatting of a span of message text (offsets and lengths in UTF-16 code units).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    pub offset: i32,
    pub length: i32,
    pub kind: EntityKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityKind {
    Mention,
    Hashtag,
    Cashtag,
    BotCommand,
    Url,
    Email,
    Phone,
    Bold,
    Italic,
    Underline,
    Strike,
    Spoiler,
    Code,
    Pre { language: String },
    TextUrl { url: String },
    MentionName { user_id: i64 },
    CustomEmoji { document_id: i64 },
    Blockquote { collapsed: bool },
    BankCard,
    Unknown,
}

impl EntityKind {
    /// Bytes of the strings the entity carries (what it adds to the stored message).
    pub fn extra_bytes(&self) -> usize {
        match self {
            EntityKind::Pre { language } => language.len(),
            EntityKind::TextUrl { url } => url.len(),
            _ => 0,
        }
    }
}

/// One copy of a message in one user's box. A private message exists twice, once per box,
/// with box-local ids; `logical_id` ties the copies together for replies, edits and revokes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub owner: UserId,
    pub id: i32,
    pub logical_id: i64,
    pub peer: Peer,
    pub from: UserId,
    pub out: bool,
    pub date: i32,
    pub text: String,
    pub entities: Vec<Entity>,
    pub reply_to: Option<i32>,
    pub edit_date: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub peer: Peer,
    pub top_message: i32,
    pub top_date: i32,
    pub read_inbox_max_id: i32,
    pub read_outbox_max_id: i32,
    pub unread_count: i32,
}

/// A change in one box, numbered by that box's `pts` sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtsUpdate {
    /// The box's pts after this update.
    pub pts: i32,
    pub pts_count: i32,
    pub kind: UpdateKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    NewMessage(Message),
    EditMessage(Message),
    DeleteMessages(Vec<i32>),
    ReadHistoryInbox { peer: Peer, max_id: i32, still_unread: i32 },
    ReadHistoryOutbox { peer: Peer, max_id: i32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxState {
    pub pts: i32,
    pub unread_count: i32,
}

/// What `updates.getDifference` returns, in domain terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub updates: Vec<PtsUpdate>,
    /// The pts the client reaches after applying `updates`.
    pub pts: i32,
    /// More updates remain after `pts` (a slice).
    pub more: bool,
}

/// What a client sends about itself with `initConnection`, kept per auth key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub layer: i32,
    pub api_id: i32,
    pub device_model: String,
    pub system_version: String,
    pub app_version: String,
    pub system_lang_code: String,
    pub lang_pack: String,
    pub lang_code: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthKeyRecord {
    pub id: i64,
    pub key: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub user_id: Option<UserId>,
    pub client: Option<ClientInfo>,
    /// The salt the key exchange handed out, valid for the key's first half hour.
    pub first_salt: i64,
    /// When the key was last used (updated about once an hour; unused keys are collected).
    pub last_used_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginCode {
    pub phone: String,
    pub hash: String,
    pub code: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub attempts: i32,
    /// `auth.signIn` checked the code for an unknown number; `auth.signUp` may follow.
    pub verified: bool,
    /// The auth key that asked for the code: only it may use the code.
    pub auth_key_id: i64,
    /// The network address that asked for it (for per-address limits).
    pub addr: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypingAction {
    Typing,
    Cancel,
    /// Any other activity; the RPC layer keeps the wire form opaque here.
    Other(Vec<u8>),
}

/// `messages.getHistory` parameters with Telegram's meaning (see `MessageService::history`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub offset_id: i32,
    pub offset_date: i32,
    pub add_offset: i32,
    pub limit: i32,
    pub max_id: i32,
    pub min_id: i32,
}
