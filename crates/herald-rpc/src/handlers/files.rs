//! Uploads, media messages and downloads (docs/client-compat.md §4.21).

use super::messages::updates_of;
use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::error::{DomainError, FileError};
use herald_domain::files::Uploaded;
use herald_domain::messages::SendRequest;
use herald_domain::model::{FileMeta, Media, Peer, UpdateKind, UserId};
use std::sync::Arc;

fn file_error(e: FileError) -> RpcError {
    DomainError::from(e).into()
}

pub async fn save_file_part(s: Arc<Services>, ctx: CallCtx, r: functions::upload::SaveFilePart) -> Result<bool, RpcError> {
    s.files.save_part(ctx.user()?, r.file_id, r.file_part, None, r.bytes).await?;
    Ok(true)
}

pub async fn save_big_file_part(s: Arc<Services>, ctx: CallCtx, r: functions::upload::SaveBigFilePart) -> Result<bool, RpcError> {
    s.files.save_part(ctx.user()?, r.file_id, r.file_part, Some(r.file_total_parts), r.bytes).await?;
    Ok(true)
}

pub(crate) fn uploaded(f: &enums::InputFile) -> Result<Uploaded, RpcError> {
    Ok(match f {
        enums::InputFile::File(f) => Uploaded { file_id: f.id, parts: f.parts, big: false, md5: f.md5_checksum.clone(), name: f.name.clone() },
        enums::InputFile::Big(f) => Uploaded { file_id: f.id, parts: f.parts, big: true, md5: String::new(), name: f.name.clone() },
        enums::InputFile::StoryDocument(_) => return Err(file_error(FileError::MediaInvalid)),
    })
}

/// The stored file an `InputMedia` names: a completed upload, or a document the sender can
/// already see (sent again without uploading).
pub(crate) async fn input_media(s: &Services, me: UserId, media: &enums::InputMedia) -> Result<Media, RpcError> {
    match media {
        enums::InputMedia::UploadedDocument(d) => {
            let up = uploaded(&d.file)?;
            let thumb = d.thumb.as_ref().map(uploaded).transpose()?;
            let file = s.files.complete(me, &up, &d.mime_type, convert::doc_attrs_in(&d.attributes), thumb.as_ref()).await?;
            Ok(Media::Document(file))
        }
        enums::InputMedia::Document(d) => {
            let enums::InputDocument::Document(doc) = &d.id else { return Err(file_error(FileError::MediaInvalid)) };
            let file = s.files.resolve(me, doc.id, doc.access_hash, Some(&doc.file_reference)).await?;
            // A photo's id names a photo: it is sent as one.
            Ok(if file.is_photo() { Media::Photo(file) } else { Media::Document(file) })
        }
        enums::InputMedia::UploadedPhoto(p) => Ok(Media::Photo(s.files.complete_photo(me, &uploaded(&p.file)?).await?)),
        enums::InputMedia::Photo(p) => {
            let enums::InputPhoto::Photo(photo) = &p.id else { return Err(file_error(FileError::MediaInvalid)) };
            let file = s.files.resolve(me, photo.id, photo.access_hash, Some(&photo.file_reference)).await?;
            if !file.is_photo() {
                return Err(file_error(FileError::MediaInvalid));
            }
            Ok(Media::Photo(file))
        }
        _ => Err(file_error(FileError::MediaInvalid)),
    }
}

/// `messages.sendMedia`: answered like `sendMessage`, with full `Updates` (Telethon's
/// `send_file` matches its message by `updateMessageID`).
pub async fn send_media(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SendMedia) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    // Rights before the upload is turned into a file (no file for a chat one cannot post in).
    s.messages.check_can_post(me, peer).await?;
    let media = input_media(&s, me, &r.media).await?;
    let reply_to = convert::reply_to_id(r.reply_to);
    let entities = convert::entities_in(&s, me, r.entities).await?;
    let req = SendRequest { from: me, peer, origin_key: ctx.auth_key_id, random_id: r.random_id, text: r.message, entities, reply_to };
    if let Some(date) = r.schedule_date.filter(|d| *d > s.clock.now_secs() as i32) {
        return super::messages::schedule(&s, me, req, date, Some(media)).await;
    }
    let sent = s.messages.send_media(req, media).await?;
    if r.clear_draft {
        s.messages.clear_draft_after_send(me, ctx.auth_key_id, peer).await?;
    }
    let UpdateKind::NewMessage(m) = &sent.update.kind else { return Err(RpcError::internal()) };
    let id = enums::Update::MessageId(types::UpdateMessageId { id: m.id, random_id: r.random_id });
    updates_of(&s, me, &[(sent.owner, sent.update.clone())], vec![id], vec![]).await
}

/// `messages.sendMultiMedia`: an album. Each item's media may be an upload or a file already
/// there (Telethon uploads with `uploadMedia` first); the answer has an `updateMessageID` per
/// item.
pub async fn send_multi_media(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SendMultiMedia) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    s.messages.check_can_post(me, peer).await?;
    if r.multi_media.is_empty() || r.multi_media.len() > herald_domain::messages::ALBUM_MAX {
        return Err(file_error(FileError::MediaInvalid));
    }
    let reply_to = convert::reply_to_id(r.reply_to);
    let mut items = Vec::with_capacity(r.multi_media.len());
    let mut random_ids = Vec::with_capacity(r.multi_media.len());
    for enums::InputSingleMedia::Media(item) in r.multi_media {
        let media = input_media(&s, me, &item.media).await?;
        let entities = convert::entities_in(&s, me, item.entities).await?;
        random_ids.push(item.random_id);
        items.push((SendRequest { from: me, peer, origin_key: ctx.auth_key_id, random_id: item.random_id, text: item.message, entities, reply_to }, media));
    }
    let sent = s.messages.send_album(items).await?;
    let mut ids = Vec::with_capacity(sent.len());
    let mut ups = Vec::with_capacity(sent.len());
    for (one, random_id) in sent.iter().zip(random_ids) {
        let UpdateKind::NewMessage(m) = &one.update.kind else { return Err(RpcError::internal()) };
        ids.push(enums::Update::MessageId(types::UpdateMessageId { id: m.id, random_id }));
        ups.push((one.owner, one.update.clone()));
    }
    updates_of(&s, me, &ups, ids, vec![]).await
}

/// `messages.uploadMedia`: the file made ready to send (albums upload each file this way and
/// then send them with `inputMediaDocument`).
pub async fn upload_media(s: Arc<Services>, ctx: CallCtx, r: functions::messages::UploadMedia) -> Result<enums::MessageMedia, RpcError> {
    let me = ctx.user()?;
    convert::input_peer(&s, me, &r.peer).await?;
    let media = input_media(&s, me, &r.media).await?;
    Ok(convert::message_media(&s.files, me, &media))
}

/// Profile photos an account keeps (Telegram keeps them all; this bounds one answer).
const PROFILE_PHOTOS_MAX: usize = 100;

async fn photo_answer(s: &Services, me: UserId, file: &FileMeta) -> Result<enums::photos::Photo, RpcError> {
    Ok(enums::photos::Photo::Photo(types::photos::Photo { photo: convert::photo(&s.files, me, file), users: convert::users(s, me, [me]).await? }))
}

/// `photos.uploadProfilePhoto`: an uploaded photo becomes the account's profile photo.
pub async fn upload_profile_photo(s: Arc<Services>, ctx: CallCtx, r: functions::photos::UploadProfilePhoto) -> Result<enums::photos::Photo, RpcError> {
    let me = ctx.user()?;
    // Video avatars and other users' (bots') photos are not supported.
    let (Some(file), None, None) = (&r.file, &r.video, &r.bot) else { return Err(file_error(FileError::PhotoInvalid)) };
    let photo = s.files.complete_photo(me, &uploaded(file)?).await?;
    s.accounts.set_profile_photo(me, photo.id).await?;
    photo_answer(&s, me, &photo).await
}

/// `photos.updateProfilePhoto`: one of the account's photos (or any photo it can see) becomes
/// current again; `inputPhotoEmpty` removes the current one.
pub async fn update_profile_photo(s: Arc<Services>, ctx: CallCtx, r: functions::photos::UpdateProfilePhoto) -> Result<enums::photos::Photo, RpcError> {
    let me = ctx.user()?;
    match &r.id {
        enums::InputPhoto::Photo(p) => {
            let file = s.files.resolve(me, p.id, p.access_hash, None).await?;
            if !file.is_photo() {
                return Err(file_error(FileError::PhotoInvalid));
            }
            s.accounts.set_profile_photo(me, file.id).await?;
            photo_answer(&s, me, &file).await
        }
        enums::InputPhoto::Empty => {
            let current = s.accounts.user(me).await?.and_then(|u| u.photo_id);
            if let Some(id) = current {
                s.accounts.delete_profile_photos(me, vec![id]).await?;
            }
            Ok(enums::photos::Photo::Photo(types::photos::Photo {
                photo: enums::Photo::Empty(types::PhotoEmpty { id: current.unwrap_or(0) }),
                users: convert::users(&s, me, [me]).await?,
            }))
        }
    }
}

/// `photos.getUserPhotos`: newest first, as the user's privacy lets the caller see them.
pub async fn get_user_photos(s: Arc<Services>, ctx: CallCtx, r: functions::photos::GetUserPhotos) -> Result<enums::photos::Photos, RpcError> {
    let me = ctx.user()?;
    let user = convert::input_user(&s, me, &r.user_id).await?;
    let all = s.accounts.profile_photos(me, user.id, PROFILE_PHOTOS_MAX).await?;
    let count = all.len() as i32;
    let start = all.iter().position(|(id, _)| r.max_id == 0 || *id < r.max_id).unwrap_or(all.len()).max(r.offset.max(0) as usize).min(all.len());
    let mut photos = Vec::new();
    for (id, _) in all.iter().skip(start).take(r.limit.clamp(0, PROFILE_PHOTOS_MAX as i32) as usize) {
        if let Some(f) = s.files.file(*id).await? {
            photos.push(convert::photo(&s.files, me, &f));
        }
    }
    let users = convert::users(&s, me, [user.id]).await?;
    Ok(if photos.len() as i32 == count {
        enums::photos::Photos::Photos(types::photos::Photos { photos, users })
    } else {
        enums::photos::Photos::Slice(types::photos::PhotosSlice { count, photos, users })
    })
}

/// `photos.deletePhotos`: the ids of those removed from the account's photos.
pub async fn delete_photos(s: Arc<Services>, ctx: CallCtx, r: functions::photos::DeletePhotos) -> Result<Vec<i64>, RpcError> {
    let me = ctx.user()?;
    let ids =
        r.id.iter()
            .filter_map(|p| match p {
                enums::InputPhoto::Photo(p) if p.access_hash == s.files.access_hash(me, p.id) => Some(p.id),
                _ => None,
            })
            .collect();
    Ok(s.accounts.delete_profile_photos(me, ids).await?)
}

/// What `upload.file` says the bytes are.
fn file_type(f: &FileMeta) -> enums::storage::FileType {
    use enums::storage::FileType as T;
    match f.mime.as_str() {
        "image/jpeg" => T::FileJpeg,
        "image/png" => T::FilePng,
        "image/gif" => T::FileGif,
        "image/webp" => T::FileWebp,
        "application/pdf" => T::FilePdf,
        "audio/mpeg" => T::FileMp3,
        "video/quicktime" => T::FileMov,
        "video/mp4" => T::FileMp4,
        _ => T::FileUnknown,
    }
}

pub async fn get_file(s: Arc<Services>, ctx: CallCtx, r: functions::upload::GetFile) -> Result<enums::upload::File, RpcError> {
    let me = ctx.user()?;
    let (file, kind) = match &r.location {
        // A document's thumbnails would be its sizes (none yet: `LOCATION_INVALID`).
        enums::InputFileLocation::InputDocumentFileLocation(l) => (s.files.resolve(me, l.id, l.access_hash, Some(&l.file_reference)).await?, &l.thumb_size),
        // A user's profile photo, by the user: it must be one of theirs and theirs to show; a
        // group's current photo, by a group the caller can see.
        enums::InputFileLocation::InputPeerPhotoFileLocation(l) => {
            let shown = match convert::input_peer(&s, me, &l.peer).await? {
                Peer::User(user) => s.accounts.profile_photos(me, user, PROFILE_PHOTOS_MAX).await?.iter().any(|(id, _)| *id == l.photo_id),
                Peer::Chat(g) | Peer::Channel(g) => s.groups.visible(me, g).await?.0.photo_id == Some(l.photo_id),
            };
            if !shown {
                return Err(file_error(FileError::FileIdInvalid));
            }
            let file = s.files.file(l.photo_id).await?.ok_or_else(|| file_error(FileError::FileIdInvalid))?;
            // Small: the smallest size; big: the largest.
            let kind = if l.big { file.sizes.last() } else { file.sizes.first() }.map(|z| z.kind.clone()).unwrap_or_default();
            let bytes = s.files.read(&file, &kind, r.offset, r.limit, r.precise).await?;
            return Ok(enums::upload::File::File(types::upload::File { r#type: enums::storage::FileType::FileJpeg, mtime: file.date, bytes }));
        }
        enums::InputFileLocation::InputPhotoFileLocation(l) => {
            let file = s.files.resolve(me, l.id, l.access_hash, Some(&l.file_reference)).await?;
            if l.thumb_size.is_empty() {
                return Err(file_error(FileError::LocationInvalid));
            }
            (file, &l.thumb_size)
        }
        _ => return Err(file_error(FileError::LocationInvalid)),
    };
    let bytes = s.files.read(&file, kind, r.offset, r.limit, r.precise).await?;
    Ok(enums::upload::File::File(types::upload::File { r#type: file_type(&file), mtime: file.date, bytes }))
}
