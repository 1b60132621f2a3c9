//! Typed errors. Each variant is one protocol outcome; the RPC layer maps them to the wire
//! in exactly one place (`herald-rpc/src/errors.rs`).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint said no (username taken, phone registered).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("storage backend failed: {0}")]
    Backend(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("phone number invalid")]
    PhoneNumberInvalid,
    #[error("phone code hash empty")]
    PhoneCodeHashEmpty,
    #[error("phone code empty")]
    PhoneCodeEmpty,
    #[error("phone code invalid")]
    PhoneCodeInvalid,
    #[error("phone code expired")]
    PhoneCodeExpired,
    #[error("phone number occupied")]
    PhoneNumberOccupied,
    #[error("first name invalid")]
    FirstNameInvalid,
    #[error("last name invalid")]
    LastNameInvalid,
    #[error("too many requests, wait {0} s")]
    FloodWait(i64),
    #[error("auth key not bound to an account")]
    Unregistered,
    /// The login code was right; the account's password must follow (`auth.checkPassword`).
    #[error("password needed")]
    SessionPasswordNeeded,
    #[error("password proof invalid")]
    PasswordHashInvalid,
    /// No live SRP exchange with this id for this account (expired, used, or never opened).
    #[error("srp id invalid")]
    SrpIdInvalid,
    /// The password changed after the SRP exchange was opened.
    #[error("password changed meanwhile")]
    SrpPasswordChanged,
    #[error("new salt invalid")]
    NewSaltInvalid,
    #[error("new password settings invalid")]
    NewSettingsInvalid,
    #[error("email invalid")]
    EmailInvalid,
    /// The password is set; the recovery email waits for the code (of this length) sent to it.
    #[error("email unconfirmed")]
    EmailUnconfirmed(i32),
    #[error("code invalid")]
    CodeInvalid,
    /// No email confirmation is pending, or its code expired.
    #[error("email code expired")]
    EmailHashExpired,
    #[error("no password set")]
    PasswordEmpty,
    /// No confirmed recovery email to send a code to.
    #[error("password recovery not available")]
    PasswordRecoveryNa,
    #[error("recovery code expired")]
    PasswordRecoveryExpired,
    #[error("login token invalid")]
    AuthTokenInvalid,
    #[error("login token expired")]
    AuthTokenExpired,
    #[error("login token already accepted")]
    AuthTokenAlreadyAccepted,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("username invalid")]
    UsernameInvalid,
    #[error("username occupied")]
    UsernameOccupied,
    #[error("username not modified")]
    UsernameNotModified,
    #[error("username not occupied")]
    UsernameNotOccupied,
    #[error("first name invalid")]
    FirstNameInvalid,
    #[error("last name invalid")]
    LastNameInvalid,
    #[error("about too long")]
    AboutTooLong,
    #[error("user id invalid")]
    UserIdInvalid,
    #[error("peer id invalid")]
    PeerIdInvalid,
    /// No other session of the account has this hash.
    #[error("session hash invalid")]
    HashInvalid,
    /// Oneself or a service account as a contact.
    #[error("contact id invalid")]
    ContactIdInvalid,
    #[error("contact name empty")]
    ContactNameEmpty,
    #[error("address book full")]
    ContactsTooMuch,
    #[error("no account has this phone number")]
    PhoneNotOccupied,
    #[error("query too short")]
    QueryTooShort,
    #[error("too many lookups, wait {0} s")]
    FloodWait(i64),
    #[error("privacy rules invalid")]
    PrivacyValueInvalid,
    #[error("privacy key invalid")]
    PrivacyKeyInvalid,
    #[error("session lifetime invalid")]
    TtlDaysInvalid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message empty")]
    MessageEmpty,
    #[error("message too long")]
    MessageTooLong,
    #[error("peer id invalid")]
    PeerIdInvalid,
    #[error("message id invalid")]
    MessageIdInvalid,
    /// `random_id` does not pair up with the ids it should (a forward's lists differ in length).
    #[error("random id invalid")]
    RandomIdInvalid,
    /// Not an emoji this server accepts as a reaction.
    #[error("reaction invalid")]
    ReactionInvalid,
    #[error("too many pinned dialogs")]
    PinnedDialogsTooMuch,
    #[error("folder id invalid")]
    FolderIdInvalid,
    #[error("ttl period invalid")]
    TtlPeriodInvalid,
    #[error("scheduled too far ahead")]
    ScheduleDateTooLate,
    #[error("too many scheduled messages")]
    ScheduleTooMuch,
    /// The other side deleted their account.
    #[error("the user deleted their account")]
    InputUserDeactivated,
    #[error("message not modified")]
    MessageNotModified,
    #[error("only the author may do this")]
    MessageAuthorRequired,
    #[error("too many ids")]
    LimitInvalid,
    #[error("entities out of bounds, too many or too large")]
    EntityBoundsInvalid,
    /// The account sent more than its send budget allows.
    #[error("too many messages, wait {0} s")]
    FloodWait(i64),
    /// The recipient blocked the sender.
    #[error("blocked by this user")]
    UserIsBlocked,
    /// The sender blocked the recipient (unblock first).
    #[error("you blocked this user")]
    YouBlockedUser,
    /// Blocking or unblocking oneself or the service account.
    #[error("contact id invalid")]
    ContactIdInvalid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The account created groups, or made invite links or join requests, faster than its
    /// budget allows.
    #[error("too many group changes, wait {0} s")]
    FloodWait(i64),
    #[error("chat id invalid")]
    ChatIdInvalid,
    #[error("channel invalid")]
    ChannelInvalid,
    /// Not a member of a private channel, kicked, or the channel is gone.
    #[error("channel private")]
    ChannelPrivate,
    #[error("may not write here")]
    ChatWriteForbidden,
    #[error("admin rights required")]
    ChatAdminRequired,
    #[error("banned in this channel")]
    UserBannedInChannel,
    #[error("slow mode: wait {0} s")]
    SlowmodeWait(i64),
    #[error("may not delete this message")]
    MessageDeleteForbidden,
    #[error("title empty")]
    ChatTitleEmpty,
    #[error("about too long")]
    ChatAboutTooLong,
    #[error("about not modified")]
    ChatAboutNotModified,
    #[error("chat not modified")]
    ChatNotModified,
    #[error("too many users")]
    UsersTooMuch,
    #[error("already a participant")]
    UserAlreadyParticipant,
    #[error("not a participant")]
    UserNotParticipant,
    #[error("too many admins")]
    AdminsTooMuch,
    #[error("the creator's rights cannot change")]
    UserCreator,
    #[error("admin rank invalid")]
    AdminRankInvalid,
    #[error("may not change this admin")]
    UserAdminInvalid,
    #[error("invite link invalid")]
    InviteHashInvalid,
    #[error("invite link expired")]
    InviteHashExpired,
    #[error("join request sent")]
    InviteRequestSent,
    #[error("no such join request")]
    HideRequesterMissing,
    #[error("slow mode seconds invalid")]
    SecondsInvalid,
    #[error("the group was upgraded to a supergroup")]
    ChatMigrated,
    /// The user's privacy settings do not let the inviter add them.
    #[error("user privacy restricted")]
    UserPrivacyRestricted,
}

/// Everything a service call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// Uploads, media and downloads (docs/client-compat.md §4.21).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Part `0` of the upload is not there when the file is used.
    #[error("file part {0} missing")]
    PartMissing(i32),
    /// A part index out of range (negative, or past the declared total).
    #[error("file part invalid")]
    PartInvalid,
    /// The declared number of parts is out of range or disagrees with the parts.
    #[error("file parts invalid")]
    PartsInvalid,
    /// A part's size breaks the rules (a multiple of 1 KiB dividing 512 KiB; the last may be shorter).
    #[error("file part size invalid")]
    PartSizeInvalid,
    #[error("file part empty")]
    PartEmpty,
    #[error("md5 checksum invalid")]
    Md5Invalid,
    /// No such file for this viewer (unknown id, wrong access hash, or not visible to them).
    #[error("file id invalid")]
    FileIdInvalid,
    #[error("file reference expired")]
    ReferenceExpired,
    #[error("file reference invalid")]
    ReferenceInvalid,
    #[error("limit invalid")]
    LimitInvalid,
    #[error("offset invalid")]
    OffsetInvalid,
    #[error("location invalid")]
    LocationInvalid,
    #[error("media caption too long")]
    CaptionTooLong,
    #[error("media invalid")]
    MediaInvalid,
    /// A mime type that is not `type/subtype` of printable ASCII.
    #[error("mime type invalid")]
    MimeInvalid,
    /// Not an image, damaged, too large, or of unusable proportions.
    #[error("photo invalid")]
    PhotoInvalid,
    /// The server keeps too little free space to take more files.
    #[error("storage full")]
    StorageFull,
    /// Media given in an edit of a message that has none.
    #[error("previous media invalid")]
    MediaPrevInvalid,
    /// The account's stored files and uploads would pass its quota.
    #[error("storage quota exceeded")]
    QuotaExceeded,
}
