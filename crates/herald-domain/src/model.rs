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

/// A basic group (up to [`crate::groups::BASIC_GROUP_MAX`] members; its messages are copied into
/// every member's box, as Telegram does) or a channel (a supergroup or a broadcast channel: one
/// box of its own, one stored copy per message, its own pts). Both kinds share one id space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(pub i64);

/// The other side of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Peer {
    User(UserId),
    /// A basic group.
    Chat(GroupId),
    /// A supergroup or broadcast channel.
    Channel(GroupId),
}

/// Telegram's "marked" ids: users as they are, basic groups negated, channels as -(10^12 + id).
/// One integer per peer, used as a storage key.
pub const CHANNEL_MARK: i64 = 1_000_000_000_000;

impl Peer {
    /// The user, for a private chat's peer (None for groups).
    pub fn user(self) -> Option<UserId> {
        match self {
            Peer::User(u) => Some(u),
            _ => None,
        }
    }
    pub fn group(self) -> Option<GroupId> {
        match self {
            Peer::Chat(g) | Peer::Channel(g) => Some(g),
            Peer::User(_) => None,
        }
    }
    pub fn marked(self) -> i64 {
        match self {
            Peer::User(u) => u.0,
            Peer::Chat(g) => -g.0,
            Peer::Channel(g) => -(CHANNEL_MARK + g.0),
        }
    }
    pub fn from_marked(id: i64) -> Peer {
        if id >= 0 {
            Peer::User(UserId(id))
        } else if id > -CHANNEL_MARK {
            Peer::Chat(GroupId(-id))
        } else {
            Peer::Channel(GroupId(-id - CHANNEL_MARK))
        }
    }
}

/// A message box: a sequence of messages with its own message ids and its own gap-free `pts`
/// (grammers' `MessageBox::{Common, Channel}`). Every user has one box for private chats and
/// basic groups; every channel has one box that all its members read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BoxId {
    User(UserId),
    Channel(GroupId),
}

impl BoxId {
    /// The box's storage key: the marked id of its owner.
    pub fn key(self) -> i64 {
        match self {
            BoxId::User(u) => u.0,
            BoxId::Channel(g) => Peer::Channel(g).marked(),
        }
    }
    pub fn from_key(key: i64) -> BoxId {
        match Peer::from_marked(key) {
            Peer::Channel(g) => BoxId::Channel(g),
            Peer::User(u) => BoxId::User(u),
            // Not a box key; kept total so a corrupt row cannot panic.
            Peer::Chat(g) => BoxId::Channel(g),
        }
    }
    pub fn channel(self) -> Option<GroupId> {
        match self {
            BoxId::Channel(g) => Some(g),
            BoxId::User(_) => None,
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
    /// When the account last went offline (0: never reported).
    pub last_seen: i64,
    /// Who may see or do what (`crate::privacy`).
    pub privacy: crate::privacy::Privacy,
    /// The account was deleted: shown as "Deleted Account", takes no messages.
    pub deleted: bool,
    /// Days of inactivity after which the account is deleted.
    pub account_ttl_days: i32,
    /// The current profile photo (a stored photo's id), and its stripped thumbnail.
    pub photo_id: Option<i64>,
    pub photo_stripped: Option<Vec<u8>>,
}

/// An entry of `owner`'s address book: the names they gave `target`, and the number they
/// know it by (empty when added by id without one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub owner: UserId,
    pub target: UserId,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub date: i64,
}

/// A user as one viewer relates to them: the viewer's contact entry for them, if any, and
/// whether they have the viewer among their contacts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenUser {
    pub user: User,
    pub contact: Option<Contact>,
    pub has_viewer: bool,
    /// The user blocked the viewer: the viewer sees neither their status nor their number.
    pub blocked_viewer: bool,
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

/// What a service message records (Telegram's `messageAction*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    ChatCreate {
        title: String,
        users: Vec<i64>,
    },
    ChatAddUser {
        users: Vec<i64>,
    },
    ChatDeleteUser {
        user: i64,
    },
    ChatJoinedByLink {
        inviter: i64,
    },
    ChatJoinedByRequest,
    ChatEditTitle {
        title: String,
    },
    ChannelCreate {
        title: String,
    },
    ChatMigrateTo {
        channel: i64,
    },
    ChannelMigrateFrom {
        title: String,
        chat: i64,
    },
    /// The pinned message is the service message's `reply_to`.
    PinMessage,
    /// Messages sent from now on delete themselves after `period` seconds (0: no more).
    SetMessagesTtl {
        period: i32,
    },
    /// The chat's new photo (its message copies keep the file, as media do).
    ChatEditPhoto {
        photo: FileMeta,
    },
    ChatDeletePhoto,
}

impl Action {
    /// The stored file the service message shows, if any.
    pub fn file(&self) -> Option<&FileMeta> {
        match self {
            Action::ChatEditPhoto { photo } => Some(photo),
            _ => None,
        }
    }
}

/// One copy of a message in one box. A private or basic-group message exists once per
/// member's box, with box-local ids; `logical_id` ties the copies together for replies, edits
/// and revokes. A channel message exists once, in the channel's box.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub owner: BoxId,
    pub id: i32,
    pub logical_id: i64,
    pub peer: Peer,
    pub from: UserId,
    /// Sent by the box's owner (user boxes; in a channel box it is decided per viewer).
    pub out: bool,
    pub date: i32,
    pub text: String,
    pub entities: Vec<Entity>,
    pub reply_to: Option<i32>,
    pub edit_date: Option<i32>,
    pub action: Option<Action>,
    /// A broadcast channel's post: shown as from the channel, with a view counter.
    pub post: bool,
    /// The author's name on a post when the channel signs its posts.
    pub post_author: Option<String>,
    /// Members mentioned by the message (by name entity, @username or reply).
    pub mentions: Vec<i64>,
    /// Views of a broadcast post (read with the message; None elsewhere).
    pub views: Option<i32>,
    /// The channel's pinned message (set when read, from the channel).
    pub pinned: bool,
    /// Where a forwarded message first came from.
    #[serde(default)]
    pub fwd: Option<Box<Forward>>,
    /// Reactions to the message, shared by all its copies.
    #[serde(default)]
    pub reactions: Option<Box<Reactions>>,
    /// The message deletes itself this many seconds after `date` (set by the store from the
    /// dialog's setting when appended).
    #[serde(default)]
    pub ttl_period: Option<i32>,
    /// A file the message carries (the text is then its caption).
    #[serde(default)]
    pub media: Option<Box<Media>>,
    /// The album (`messages.sendMultiMedia`) the message belongs to: one id for all of them.
    #[serde(default)]
    pub grouped_id: Option<i64>,
}

/// What a message carries besides text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Media {
    Document(FileMeta),
    /// A photo: `sizes` are its JPEGs, the file's own blob the largest.
    Photo(FileMeta),
}

impl Media {
    pub fn file(&self) -> &FileMeta {
        match self {
            Media::Document(f) | Media::Photo(f) => f,
        }
    }
}

/// One of a photo's sizes (Telegram's `photoSize`): a JPEG fitting a box, named by a letter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoSize {
    pub kind: String,
    pub w: i32,
    pub h: i32,
    pub size: i64,
    pub blob: String,
}

/// A stored file as messages show it; its bytes live in the blob store under `blob`, never
/// in the database. Copied into each message that carries it, so rendering needs no lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub id: i64,
    /// A content hash, lower-case hex: the blob's name (identical content is kept once). For
    /// an upload, the SHA-256 of its parts' SHA-256s; for a file the server made, of its bytes.
    pub blob: String,
    pub size: i64,
    pub mime: String,
    pub date: i32,
    #[serde(default)]
    pub attributes: Vec<DocAttr>,
    /// A photo's sizes, smallest first; a document's thumbnail (empty when it has none).
    #[serde(default)]
    pub sizes: Vec<PhotoSize>,
    /// The stripped thumbnail (`photoStrippedSize` bytes) of a photo or a document's thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_bytes")]
    pub stripped: Option<Vec<u8>>,
}

/// Bytes in JSON as a hex string (half the size of serde's array of numbers).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&crate::files::hex(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(h) = Option::<String>::deserialize(d)? else { return Ok(None) };
        crate::files::unhex(&h).map(Some).ok_or_else(|| serde::de::Error::custom("bad hex"))
    }
}

impl FileMeta {
    /// A photo (its largest size is the file itself), not a document, which may have a
    /// thumbnail among its sizes.
    pub fn is_photo(&self) -> bool {
        self.sizes.last().is_some_and(|s| s.blob == self.blob)
    }

    pub fn file_name(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            DocAttr::Filename(n) => Some(n.as_str()),
            _ => None,
        })
    }
}

/// A document's attributes (Telegram's `DocumentAttribute`), as the uploader gave them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocAttr {
    Filename(String),
    ImageSize {
        w: i32,
        h: i32,
    },
    Animated,
    /// Duration in milliseconds.
    Video {
        duration_ms: i64,
        w: i32,
        h: i32,
        round: bool,
        streaming: bool,
        nosound: bool,
    },
    Audio {
        duration: i32,
        voice: bool,
        title: Option<String>,
        performer: Option<String>,
    },
    Sticker {
        alt: String,
    },
}

/// A message's reactions as every copy shows them: how many of each, and the latest reactors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reactions {
    /// (emoji, count), the most used first.
    pub counts: Vec<(String, i32)>,
    /// (user, emoji, date), newest first, at most `RECENT_REACTIONS_MAX`.
    pub recent: Vec<(i64, String, i32)>,
}

/// Reactors a message keeps in its `recent` list (all of them in private chats and small
/// groups).
pub const RECENT_REACTIONS_MAX: usize = 50;

/// A forwarded message's origin (Telegram's `messageFwdHeader`): who first sent it (a user, or
/// a broadcast channel for its posts) and when, kept through forwards of forwards; and, in
/// Saved Messages, where it was saved from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub from: Peer,
    pub date: i32,
    /// The post's id in its channel.
    pub channel_post: Option<i32>,
    pub post_author: Option<String>,
    /// Saved Messages: the chat and message it was saved from.
    pub saved_from: Option<(Peer, i32)>,
    /// The origin's forwards privacy hides who they are: shown by this name only (`from` is
    /// kept for forwards of this forward, never shown).
    #[serde(default)]
    pub hidden_name: Option<String>,
}

impl Message {
    /// A message `from` composed to `peer`, as the service has it before the store numbers
    /// it: the sender's outgoing copy, no reply, action, post fields, mentions or views.
    pub fn draft(from: UserId, peer: Peer, date: i32, text: String, entities: Vec<Entity>, logical_id: i64) -> Self {
        Message {
            owner: BoxId::User(from),
            id: 0,
            logical_id,
            peer,
            from,
            out: true,
            date,
            text,
            entities,
            reply_to: None,
            edit_date: None,
            action: None,
            post: false,
            post_author: None,
            mentions: vec![],
            views: None,
            pinned: false,
            fwd: None,
            reactions: None,
            ttl_period: None,
            media: None,
            grouped_id: None,
        }
    }

    /// Whether `viewer` sent this copy (channel messages have one copy for all viewers).
    pub fn out_for(&self, viewer: UserId) -> bool {
        match self.owner {
            BoxId::User(_) => self.out,
            BoxId::Channel(_) => self.from == viewer && !self.post,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub peer: Peer,
    pub top_message: i32,
    pub top_date: i32,
    pub read_inbox_max_id: i32,
    pub read_outbox_max_id: i32,
    pub unread_count: i32,
    pub unread_mentions: i32,
    /// The channel's pts (channel dialogs only).
    pub pts: Option<i32>,
    /// Marked unread by hand (`messages.markDialogUnread`); reading new messages clears it.
    pub unread_mark: bool,
    /// Pinned to the top of its list.
    pub pinned: bool,
    /// 0: the main list; 1: the archive.
    pub folder: i32,
    /// The unsent text the owner left in this dialog.
    pub draft: Option<Draft>,
    /// New messages here delete themselves after this many seconds (0: never).
    pub ttl_period: i32,
}

impl Dialog {
    /// A dialog with nothing in it yet.
    pub fn empty(peer: Peer) -> Self {
        Dialog {
            peer,
            top_message: 0,
            top_date: 0,
            read_inbox_max_id: 0,
            read_outbox_max_id: 0,
            unread_count: 0,
            unread_mentions: 0,
            pts: None,
            unread_mark: false,
            pinned: false,
            folder: 0,
            draft: None,
            ttl_period: 0,
        }
    }
}

/// An unsent message kept with a dialog and synced to the owner's sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub text: String,
    pub entities: Vec<Entity>,
    pub reply_to: Option<i32>,
    pub date: i32,
}

/// A message waiting to be sent at `date` (`schedule_date`), kept apart from the boxes; ids
/// are the owner's own sequence of scheduled messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    pub owner: UserId,
    pub id: i32,
    pub peer: Peer,
    pub text: String,
    pub entities: Vec<Entity>,
    pub reply_to: Option<i32>,
    pub random_id: i64,
    pub date: i32,
    /// A photo or document it will carry (then `text` is its caption).
    #[serde(default)]
    pub media: Option<Box<Media>>,
}

impl Scheduled {
    /// The message as the owner sees it while it waits: outgoing, dated when it will be sent.
    pub fn as_message(&self) -> Message {
        let mut m = Message::draft(self.owner, self.peer, self.date, self.text.clone(), self.entities.clone(), 0);
        m.id = self.id;
        m.reply_to = self.reply_to;
        m.media = self.media.clone();
        m
    }
}

/// The archive's folder id (Telegram's `folder_id = 1`).
pub const ARCHIVE_FOLDER: i32 = 1;

/// A change in one box, numbered by that box's `pts` sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtsUpdate {
    /// The box's pts after this update.
    pub pts: i32,
    pub pts_count: i32,
    pub kind: UpdateKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateKind {
    NewMessage(Message),
    EditMessage(Message),
    DeleteMessages(Vec<i32>),
    ReadHistoryInbox {
        peer: Peer,
        max_id: i32,
        still_unread: i32,
    },
    ReadHistoryOutbox {
        peer: Peer,
        max_id: i32,
    },
    /// Messages pinned or unpinned in `peer`.
    PinnedMessages {
        peer: Peer,
        ids: Vec<i32>,
        pinned: bool,
    },
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
    /// The client's pts is older than the kept log: it must reload its state
    /// (`differenceTooLong`); `pts` is then the box's current pts.
    pub too_long: bool,
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
    /// The address (an IPv4 address or IPv6 /64) whose key exchange made it: keys that never
    /// log in are also bounded per address.
    pub addr: String,
    /// A temporary key bound to this permanent one (`auth.bindTempAuthKey`): requests on it
    /// act as that key (its login, its client data).
    pub perm_key_id: Option<i64>,
}

/// A two-step-verification password as stored: the client's salts and verifier
/// `v = g^x mod p` (the password and `x` never reach the server), its hint and recovery email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Password {
    pub user: UserId,
    pub salt1: Vec<u8>,
    pub salt2: Vec<u8>,
    /// 256 big-endian bytes.
    pub verifier: Vec<u8>,
    pub hint: String,
    /// The confirmed recovery email.
    pub email: Option<String>,
    /// An email given but not yet confirmed with its code.
    pub pending_email: Option<String>,
    /// The code last sent by email, for confirming `pending_email` or recovering the account.
    pub code: Option<EmailCode>,
    pub set_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePurpose {
    ConfirmEmail = 1,
    Recover = 2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailCode {
    pub code: String,
    pub purpose: CodePurpose,
    pub expires_at: i64,
    pub attempts: i32,
}

/// One SRP exchange the server opened (`account.getPassword`): its secret `b`, the `B` it
/// sent, and the verifier it was made for. Used at most once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrpChallenge {
    pub id: i64,
    pub user: UserId,
    pub b: Vec<u8>,
    pub big_b: Vec<u8>,
    pub verifier: Vec<u8>,
    pub expires_at: i64,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypingAction {
    Typing,
    Cancel,
    /// Any other activity; the RPC layer keeps the wire form opaque here.
    Other(Vec<u8>),
}

/// A page of `messages.getDialogs`: one folder or all, newest first after the pinned ones
/// (which only the first page, `offset_date == 0`, carries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DialogsQuery {
    /// None: every folder (the main list's pinned dialogs first), as Telegram answers a
    /// `getDialogs` without `folder_id`.
    pub folder: Option<i32>,
    pub offset_date: i32,
    pub offset_id: i32,
    pub limit: i32,
    pub exclude_pinned: bool,
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

/// A search over messages (`MessageStore::search`). Every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Where to look.
    pub boxes: Vec<BoxId>,
    /// In user boxes, only the dialog with this peer.
    pub peer: Option<Peer>,
    /// Lower-case words each of which must start a word of the text (empty: no text
    /// condition).
    pub words: Vec<String>,
    pub from: Option<UserId>,
    /// Only messages mentioning this user.
    pub mentioning: Option<UserId>,
    /// Dates and ids: exclusive bounds, 0 for none.
    pub min_date: i32,
    pub max_date: i32,
    pub min_id: i32,
    pub max_id: i32,
    /// Paging, newest first: messages before this (date, peer marked id, id) in that order
    /// (across boxes), or with an id below `offset_id` (within one dialog).
    pub before: Option<(i32, i64, i32)>,
    pub offset_id: i32,
    pub add_offset: i32,
    pub limit: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupKind {
    /// A basic group: messages in each member's box.
    Basic,
    /// A supergroup: a channel box everyone may post in.
    Megagroup,
    /// A broadcast channel: only admins post.
    Broadcast,
}

impl GroupKind {
    pub fn is_channel(self) -> bool {
        self != GroupKind::Basic
    }
    pub fn code(self) -> i32 {
        match self {
            GroupKind::Basic => 0,
            GroupKind::Megagroup => 1,
            GroupKind::Broadcast => 2,
        }
    }
    pub fn from_code(c: i32) -> Self {
        match c {
            0 => GroupKind::Basic,
            2 => GroupKind::Broadcast,
            _ => GroupKind::Megagroup,
        }
    }
}

/// Admin rights, as Telegram's `chatAdminRights` flags (bit numbers are the TL flag bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRights(pub u32);

impl AdminRights {
    pub const CHANGE_INFO: u32 = 1 << 0;
    pub const POST_MESSAGES: u32 = 1 << 1;
    pub const EDIT_MESSAGES: u32 = 1 << 2;
    pub const DELETE_MESSAGES: u32 = 1 << 3;
    pub const BAN_USERS: u32 = 1 << 4;
    pub const INVITE_USERS: u32 = 1 << 5;
    pub const PIN_MESSAGES: u32 = 1 << 7;
    pub const ADD_ADMINS: u32 = 1 << 9;
    pub const ANONYMOUS: u32 = 1 << 10;
    pub const MANAGE_CALL: u32 = 1 << 11;
    pub const OTHER: u32 = 1 << 12;
    /// What a creator holds (every right a chat has).
    pub const ALL: AdminRights = AdminRights(
        Self::CHANGE_INFO
            | Self::POST_MESSAGES
            | Self::EDIT_MESSAGES
            | Self::DELETE_MESSAGES
            | Self::BAN_USERS
            | Self::INVITE_USERS
            | Self::PIN_MESSAGES
            | Self::ADD_ADMINS
            | Self::MANAGE_CALL
            | Self::OTHER,
    );
    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

/// Banned rights, as Telegram's `chatBannedRights` flags; `until` 0 means for ever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BannedRights {
    pub bits: u32,
    pub until: i32,
}

impl BannedRights {
    pub const VIEW_MESSAGES: u32 = 1 << 0;
    pub const SEND_MESSAGES: u32 = 1 << 1;
    pub const SEND_MEDIA: u32 = 1 << 2;
    pub const CHANGE_INFO: u32 = 1 << 10;
    pub const INVITE_USERS: u32 = 1 << 15;
    pub const PIN_MESSAGES: u32 = 1 << 17;
    /// Whether the restriction `bit` holds at `now` (expired bans hold nothing).
    pub fn forbids(self, bit: u32, now: i32) -> bool {
        self.bits & bit != 0 && (self.until == 0 || self.until > now)
    }
}

/// How far a supergroup has been read, kept so that each sender's outbox mark ("read by
/// someone else up to") is one lookup: the highest member read mark and whose it is, and
/// the highest read mark of any other member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadTop {
    pub user: UserId,
    pub top: i32,
    pub second: i32,
}

impl ReadTop {
    /// How far members other than `user` have read: `user`'s outbox mark.
    pub fn visible_to(&self, user: UserId) -> i32 {
        if user == self.user {
            self.second
        } else {
            self.top
        }
    }

    /// After `user`'s read mark rose to `mark`.
    pub fn raised(self, user: UserId, mark: i32) -> Self {
        if user == self.user {
            Self { top: self.top.max(mark), ..self }
        } else if mark > self.top {
            Self { user, top: mark, second: self.top }
        } else {
            Self { second: self.second.max(mark), ..self }
        }
    }
}

/// A channel member's read mark moved to `max_id`; the group's [`ReadTop`] around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadMove {
    pub max_id: i32,
    pub before: ReadTop,
    pub after: ReadTop,
}

/// A basic group or a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub kind: GroupKind,
    pub title: String,
    pub about: String,
    pub username: Option<String>,
    pub creator: UserId,
    pub date: i32,
    /// Bumped on every change of the group's description (basic groups' `version`).
    pub version: i32,
    pub participants_count: i32,
    pub admins_count: i32,
    pub kicked_count: i32,
    pub banned_count: i32,
    pub signatures: bool,
    pub slowmode_seconds: i32,
    pub default_banned: BannedRights,
    pub pinned_msg_id: Option<i32>,
    /// A basic group that became this supergroup, and the channel a basic group became.
    pub migrated_from: Option<GroupId>,
    pub migrated_to: Option<GroupId>,
    pub deleted: bool,
    /// The current photo (a file with a photo's sizes), and its stripped thumbnail.
    pub photo_id: Option<i64>,
    pub photo_stripped: Option<Vec<u8>>,
}

impl Group {
    pub fn peer(&self) -> Peer {
        if self.kind.is_channel() {
            Peer::Channel(self.id)
        } else {
            Peer::Chat(self.id)
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewGroup {
    pub kind: GroupKind,
    pub title: String,
    pub about: String,
    pub creator: UserId,
    pub date: i32,
}

/// A user's standing in a group. `Left` and `Kicked` are not members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Creator,
    Admin,
    Member,
    /// Restricted but still a member (some banned rights, not `VIEW_MESSAGES`).
    Restricted,
    /// Removed and not allowed back (`VIEW_MESSAGES` banned).
    Kicked,
    Left,
}

impl Role {
    pub fn is_member(self) -> bool {
        matches!(self, Role::Creator | Role::Admin | Role::Member | Role::Restricted)
    }
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Creator | Role::Admin)
    }
    pub fn code(self) -> i32 {
        match self {
            Role::Creator => 0,
            Role::Admin => 1,
            Role::Member => 2,
            Role::Restricted => 3,
            Role::Kicked => 4,
            Role::Left => 5,
        }
    }
    pub fn from_code(c: i32) -> Self {
        match c {
            0 => Role::Creator,
            1 => Role::Admin,
            2 => Role::Member,
            3 => Role::Restricted,
            4 => Role::Kicked,
            _ => Role::Left,
        }
    }
}

/// One user's row in a group: standing, rights and (for channels) read marks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub group: GroupId,
    pub user: UserId,
    pub role: Role,
    pub admin_rights: AdminRights,
    pub banned: BannedRights,
    pub rank: Option<String>,
    /// Who added, promoted or banned the user.
    pub actor: UserId,
    pub date: i32,
    /// Channels only: the member's read mark in the channel box.
    pub read_inbox_max_id: i32,
    /// When the member last posted (slow mode).
    pub last_post: i32,
}

impl Member {
    pub fn new(group: GroupId, user: UserId, role: Role, actor: UserId, date: i32) -> Self {
        let admin_rights = if role == Role::Creator { AdminRights::ALL } else { AdminRights::default() };
        Member { group, user, role, admin_rights, banned: BannedRights::default(), rank: None, actor, date, read_inbox_max_id: 0, last_post: 0 }
    }
}

/// Which members `channels.getParticipants` lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberFilter {
    /// Current members, newest first.
    Recent,
    Admins,
    Kicked(String),
    Banned(String),
    /// Members whose name or username contains the text.
    Search(String),
}

/// An invite link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    pub hash: String,
    pub group: GroupId,
    pub admin: UserId,
    pub date: i32,
    pub expire_date: Option<i32>,
    pub usage_limit: Option<i32>,
    pub usage: i32,
    pub request_needed: bool,
    pub revoked: bool,
    pub title: Option<String>,
    pub permanent: bool,
}

/// A pending join request made through a link that needs approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    pub group: GroupId,
    pub user: UserId,
    pub date: i32,
    pub invite: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_top_keeps_the_highest_mark_and_the_highest_of_anyone_else() {
        let (a, b, c) = (UserId(1), UserId(2), UserId(3));
        let t = ReadTop { user: UserId(0), top: 0, second: 0 };
        let t = t.raised(a, 5);
        assert_eq!(t, ReadTop { user: a, top: 5, second: 0 });
        assert_eq!((t.visible_to(a), t.visible_to(b)), (0, 5));
        let t = t.raised(a, 8); // the top reader reads on: only the others' mark moves
        assert_eq!(t, ReadTop { user: a, top: 8, second: 0 });
        let t = t.raised(b, 6); // below the top: the second mark
        assert_eq!(t, ReadTop { user: a, top: 8, second: 6 });
        assert_eq!((t.visible_to(a), t.visible_to(b), t.visible_to(c)), (6, 8, 8));
        let t = t.raised(c, 9); // a new top reader: the old top becomes the second
        assert_eq!(t, ReadTop { user: c, top: 9, second: 8 });
        assert_eq!((t.visible_to(a), t.visible_to(c)), (9, 8));
        assert_eq!(t.raised(b, 7), t, "a mark below both changes nothing");
    }
}
