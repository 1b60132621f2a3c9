//! Uploads, media messages and downloads (docs/client-compat.md §4.21).

use super::messages::updates_of;
use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::error::{DomainError, FileError};
use herald_domain::files::Uploaded;
use herald_domain::messages::SendRequest;
use herald_domain::model::{FileMeta, Media, UpdateKind, UserId};
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

fn uploaded(f: &enums::InputFile) -> Result<Uploaded, RpcError> {
    Ok(match f {
        enums::InputFile::File(f) => Uploaded { file_id: f.id, parts: f.parts, big: false, md5: f.md5_checksum.clone(), name: f.name.clone() },
        enums::InputFile::Big(f) => Uploaded { file_id: f.id, parts: f.parts, big: true, md5: String::new(), name: f.name.clone() },
        enums::InputFile::StoryDocument(_) => return Err(file_error(FileError::MediaInvalid)),
    })
}

/// The stored file an `InputMedia` names: a completed upload, or a document the sender can
/// already see (sent again without uploading).
async fn input_media(s: &Services, me: UserId, media: &enums::InputMedia) -> Result<Media, RpcError> {
    match media {
        enums::InputMedia::UploadedDocument(d) => {
            let up = uploaded(&d.file)?;
            let file = s.files.complete(me, &up, &d.mime_type, convert::doc_attrs_in(&d.attributes)).await?;
            Ok(Media::Document(file))
        }
        enums::InputMedia::Document(d) => {
            let enums::InputDocument::Document(doc) = &d.id else { return Err(file_error(FileError::MediaInvalid)) };
            let file = s.files.resolve(me, doc.id, doc.access_hash, Some(&doc.file_reference)).await?;
            // A photo's id names a photo: it is sent as one.
            Ok(if file.sizes.is_empty() { Media::Document(file) } else { Media::Photo(file) })
        }
        enums::InputMedia::UploadedPhoto(p) => Ok(Media::Photo(s.files.complete_photo(me, &uploaded(&p.file)?).await?)),
        enums::InputMedia::Photo(p) => {
            let enums::InputPhoto::Photo(photo) = &p.id else { return Err(file_error(FileError::MediaInvalid)) };
            let file = s.files.resolve(me, photo.id, photo.access_hash, Some(&photo.file_reference)).await?;
            if file.sizes.is_empty() {
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
    let sent = s.messages.send_media(req, media).await?;
    if r.clear_draft {
        s.messages.save_draft(me, ctx.auth_key_id, peer, None).await?;
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
