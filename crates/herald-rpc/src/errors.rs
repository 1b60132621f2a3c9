//! The one place where errors become `rpc_error` (code and message, as Telegram names them;
//! Telethon matches on the exact message).

use herald_domain::error::{AccountError, AuthError, DomainError, FileError, GroupError, MessageError, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {message}")]
pub struct RpcError {
    pub code: i32,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn bad_request(message: &str) -> Self {
        Self::new(400, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(401, "AUTH_KEY_UNREGISTERED")
    }
    /// A well-formed request the server does not implement yet, named so the client and the
    /// logs say exactly what is missing.
    pub fn not_implemented(name: &str) -> Self {
        let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        Self::new(400, format!("METHOD_NOT_IMPLEMENTED_{name}"))
    }
    /// A constructor id that is no method of layer 227.
    pub fn unknown_constructor(id: u32) -> Self {
        Self::new(400, format!("INPUT_METHOD_INVALID_{id:08X}"))
    }
    /// A constructor id of layer 227 that is a type, not a method (`boolTrue`, `inputPeerSelf`).
    pub fn not_a_method(id: u32) -> Self {
        Self::new(400, format!("INPUT_METHOD_INVALID_{id:08X}"))
    }
    /// The request's TL did not parse.
    /// `420 FLOOD_WAIT_X`: try again in `secs` seconds.
    pub fn flood_wait(secs: i64) -> Self {
        Self::new(420, format!("FLOOD_WAIT_{secs}"))
    }
    pub fn fetch_error() -> Self {
        Self::new(400, "INPUT_FETCH_ERROR")
    }
    pub fn internal() -> Self {
        Self::new(500, "INTERNAL")
    }
}

impl From<DomainError> for RpcError {
    fn from(e: DomainError) -> Self {
        let (code, msg): (i32, &str) = match e {
            DomainError::File(f) => match f {
                FileError::PartMissing(n) => return RpcError::new(400, format!("FILE_PART_{n}_MISSING")),
                FileError::PartInvalid => (400, "FILE_PART_INVALID"),
                FileError::PartsInvalid => (400, "FILE_PARTS_INVALID"),
                FileError::PartSizeInvalid => (400, "FILE_PART_SIZE_INVALID"),
                FileError::PartEmpty => (400, "FILE_PART_EMPTY"),
                FileError::Md5Invalid => (400, "MD5_CHECKSUM_INVALID"),
                FileError::FileIdInvalid => (400, "FILE_ID_INVALID"),
                FileError::ReferenceExpired => (400, "FILE_REFERENCE_EXPIRED"),
                FileError::ReferenceInvalid => (400, "FILE_REFERENCE_INVALID"),
                FileError::LimitInvalid => (400, "LIMIT_INVALID"),
                FileError::OffsetInvalid => (400, "OFFSET_INVALID"),
                FileError::LocationInvalid => (400, "LOCATION_INVALID"),
                FileError::CaptionTooLong => (400, "MEDIA_CAPTION_TOO_LONG"),
                FileError::MediaInvalid => (400, "MEDIA_INVALID"),
                FileError::MediaPrevInvalid => (400, "MEDIA_PREV_INVALID"),
                FileError::MimeInvalid => (400, "MIME_TYPE_INVALID"),
                FileError::PhotoInvalid => (400, "PHOTO_INVALID"),
                FileError::StorageFull => (500, "STORAGE_FULL"),
                FileError::QuotaExceeded => (400, "STORAGE_QUOTA_EXCEEDED"),
            },
            DomainError::Auth(a) => match a {
                AuthError::PhoneNumberInvalid => (400, "PHONE_NUMBER_INVALID"),
                AuthError::PhoneCodeHashEmpty => (400, "PHONE_CODE_HASH_EMPTY"),
                AuthError::PhoneCodeEmpty => (400, "PHONE_CODE_EMPTY"),
                AuthError::PhoneCodeInvalid => (400, "PHONE_CODE_INVALID"),
                AuthError::PhoneCodeExpired => (400, "PHONE_CODE_EXPIRED"),
                AuthError::PhoneNumberOccupied => (400, "PHONE_NUMBER_OCCUPIED"),
                AuthError::FirstNameInvalid => (400, "FIRSTNAME_INVALID"),
                AuthError::LastNameInvalid => (400, "LASTNAME_INVALID"),
                AuthError::FloodWait(s) => return RpcError::flood_wait(s),
                AuthError::Unregistered => (401, "AUTH_KEY_UNREGISTERED"),
                AuthError::SessionPasswordNeeded => (401, "SESSION_PASSWORD_NEEDED"),
                AuthError::PasswordHashInvalid => (400, "PASSWORD_HASH_INVALID"),
                AuthError::SrpIdInvalid => (400, "SRP_ID_INVALID"),
                AuthError::SrpPasswordChanged => (400, "SRP_PASSWORD_CHANGED"),
                AuthError::NewSaltInvalid => (400, "NEW_SALT_INVALID"),
                AuthError::NewSettingsInvalid => (400, "NEW_SETTINGS_INVALID"),
                AuthError::EmailInvalid => (400, "EMAIL_INVALID"),
                AuthError::EmailUnconfirmed(n) => return RpcError::new(400, format!("EMAIL_UNCONFIRMED_{n}")),
                AuthError::CodeInvalid => (400, "CODE_INVALID"),
                AuthError::EmailHashExpired => (400, "EMAIL_HASH_EXPIRED"),
                AuthError::PasswordEmpty => (400, "PASSWORD_EMPTY"),
                AuthError::PasswordRecoveryNa => (400, "PASSWORD_RECOVERY_NA"),
                AuthError::PasswordRecoveryExpired => (400, "PASSWORD_RECOVERY_EXPIRED"),
                AuthError::AuthTokenInvalid => (400, "AUTH_TOKEN_INVALID"),
                AuthError::AuthTokenExpired => (400, "AUTH_TOKEN_EXPIRED"),
                AuthError::AuthTokenAlreadyAccepted => (400, "AUTH_TOKEN_ALREADY_ACCEPTED"),
            },
            DomainError::Account(a) => match a {
                AccountError::UsernameInvalid => (400, "USERNAME_INVALID"),
                AccountError::UsernameOccupied => (400, "USERNAME_OCCUPIED"),
                AccountError::UsernameNotModified => (400, "USERNAME_NOT_MODIFIED"),
                AccountError::UsernameNotOccupied => (400, "USERNAME_NOT_OCCUPIED"),
                AccountError::FirstNameInvalid => (400, "FIRSTNAME_INVALID"),
                AccountError::LastNameInvalid => (400, "LASTNAME_INVALID"),
                AccountError::AboutTooLong => (400, "ABOUT_TOO_LONG"),
                AccountError::UserIdInvalid => (400, "USER_ID_INVALID"),
                AccountError::PeerIdInvalid => (400, "PEER_ID_INVALID"),
                AccountError::HashInvalid => (400, "HASH_INVALID"),
                AccountError::ContactIdInvalid => (400, "CONTACT_ID_INVALID"),
                AccountError::ContactNameEmpty => (400, "CONTACT_NAME_EMPTY"),
                AccountError::ContactsTooMuch => (400, "CONTACTS_TOO_MUCH"),
                AccountError::PhoneNotOccupied => (400, "PHONE_NOT_OCCUPIED"),
                AccountError::QueryTooShort => (400, "QUERY_TOO_SHORT"),
                AccountError::PrivacyValueInvalid => (400, "PRIVACY_VALUE_INVALID"),
                AccountError::PrivacyKeyInvalid => (400, "PRIVACY_KEY_INVALID"),
                AccountError::TtlDaysInvalid => (400, "TTL_DAYS_INVALID"),
                AccountError::FloodWait(s) => return RpcError::flood_wait(s),
            },
            DomainError::Message(m) => match m {
                MessageError::MessageEmpty => (400, "MESSAGE_EMPTY"),
                MessageError::MessageTooLong => (400, "MESSAGE_TOO_LONG"),
                MessageError::PeerIdInvalid => (400, "PEER_ID_INVALID"),
                MessageError::MessageIdInvalid => (400, "MESSAGE_ID_INVALID"),
                MessageError::RandomIdInvalid => (400, "RANDOM_ID_INVALID"),
                MessageError::ReactionInvalid => (400, "REACTION_INVALID"),
                MessageError::PinnedDialogsTooMuch => (400, "PINNED_DIALOGS_TOO_MUCH"),
                MessageError::FolderIdInvalid => (400, "FOLDER_ID_INVALID"),
                MessageError::TtlPeriodInvalid => (400, "TTL_PERIOD_INVALID"),
                MessageError::ScheduleDateTooLate => (400, "SCHEDULE_DATE_TOO_LATE"),
                MessageError::ScheduleTooMuch => (400, "SCHEDULE_TOO_MUCH"),
                MessageError::InputUserDeactivated => (400, "INPUT_USER_DEACTIVATED"),
                MessageError::MessageNotModified => (400, "MESSAGE_NOT_MODIFIED"),
                MessageError::MessageAuthorRequired => (403, "MESSAGE_AUTHOR_REQUIRED"),
                MessageError::LimitInvalid => (400, "LIMIT_INVALID"),
                MessageError::EntityBoundsInvalid => (400, "ENTITY_BOUNDS_INVALID"),
                MessageError::FloodWait(s) => return RpcError::flood_wait(s),
                MessageError::UserIsBlocked => (400, "USER_IS_BLOCKED"),
                MessageError::YouBlockedUser => (400, "YOU_BLOCKED_USER"),
                MessageError::ContactIdInvalid => (400, "CONTACT_ID_INVALID"),
            },
            DomainError::Group(g) => match g {
                GroupError::FloodWait(s) => return RpcError::flood_wait(s),
                GroupError::ChatIdInvalid => (400, "CHAT_ID_INVALID"),
                GroupError::ChannelInvalid => (400, "CHANNEL_INVALID"),
                GroupError::ChannelPrivate => (406, "CHANNEL_PRIVATE"),
                GroupError::ChatWriteForbidden => (403, "CHAT_WRITE_FORBIDDEN"),
                GroupError::ChatAdminRequired => (400, "CHAT_ADMIN_REQUIRED"),
                GroupError::UserBannedInChannel => (400, "USER_BANNED_IN_CHANNEL"),
                GroupError::SlowmodeWait(s) => return RpcError::new(420, format!("SLOWMODE_WAIT_{s}")),
                GroupError::MessageDeleteForbidden => (403, "MESSAGE_DELETE_FORBIDDEN"),
                GroupError::ChatTitleEmpty => (400, "CHAT_TITLE_EMPTY"),
                GroupError::ChatAboutTooLong => (400, "CHAT_ABOUT_TOO_LONG"),
                GroupError::ChatAboutNotModified => (400, "CHAT_ABOUT_NOT_MODIFIED"),
                GroupError::ChatNotModified => (400, "CHAT_NOT_MODIFIED"),
                GroupError::UsersTooMuch => (400, "USERS_TOO_MUCH"),
                GroupError::UserAlreadyParticipant => (400, "USER_ALREADY_PARTICIPANT"),
                GroupError::UserNotParticipant => (400, "USER_NOT_PARTICIPANT"),
                GroupError::AdminsTooMuch => (400, "ADMINS_TOO_MUCH"),
                GroupError::UserCreator => (400, "USER_CREATOR"),
                GroupError::AdminRankInvalid => (400, "ADMIN_RANK_INVALID"),
                GroupError::UserAdminInvalid => (400, "USER_ADMIN_INVALID"),
                GroupError::InviteHashInvalid => (400, "INVITE_HASH_INVALID"),
                GroupError::InviteHashExpired => (400, "INVITE_HASH_EXPIRED"),
                GroupError::InviteRequestSent => (400, "INVITE_REQUEST_SENT"),
                GroupError::HideRequesterMissing => (400, "HIDE_REQUESTER_MISSING"),
                GroupError::SecondsInvalid => (400, "SECONDS_INVALID"),
                // A basic group that became a supergroup takes no more messages.
                GroupError::ChatMigrated => (403, "CHAT_WRITE_FORBIDDEN"),
                GroupError::UserPrivacyRestricted => (403, "USER_PRIVACY_RESTRICTED"),
            },
            DomainError::Store(StoreError::Conflict(what)) => {
                tracing::warn!(what, "unmapped storage conflict");
                (500, "INTERNAL")
            }
            DomainError::Store(StoreError::Backend(e)) => {
                tracing::error!(error = %e, "storage failure");
                (500, "INTERNAL")
            }
        };
        RpcError::new(code, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_telegram() {
        assert_eq!(RpcError::from(DomainError::from(AuthError::FloodWait(30))), RpcError::new(420, "FLOOD_WAIT_30"));
        assert_eq!(RpcError::from(DomainError::from(GroupError::FloodWait(7))), RpcError::new(420, "FLOOD_WAIT_7"));
        assert_eq!(RpcError::from(DomainError::from(AccountError::UsernameOccupied)).message, "USERNAME_OCCUPIED");
        assert_eq!(RpcError::not_implemented("messages.sendMedia").message, "METHOD_NOT_IMPLEMENTED_MESSAGES_SENDMEDIA");
        assert_eq!(RpcError::unknown_constructor(0xdeadbeef).message, "INPUT_METHOD_INVALID_DEADBEEF");
    }
}
