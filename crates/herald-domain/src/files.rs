//! Files: uploads in parts, the files they become, and downloads by range
//! (docs/client-compat.md §4.21). The bytes go through a [`BlobStore`], never the database;
//! the metadata through a [`FileStore`]. Files are addressed as everything else is: an id, an
//! access hash keyed per viewer, and a file reference that expires.

use crate::clock::Clock;
use crate::error::{FileError, Result};
use crate::model::*;
use crate::store::{BlobStore, FileStore, NewFile, UploadId};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The largest part, and what every part but the last must divide: 512 KiB.
pub const PART_MAX: usize = 512 * 1024;
/// Parts one upload may have: 8000 × 512 KiB is 4000 MiB, Telegram's limit for everyone here.
pub const PARTS_MAX: i32 = 8000;
/// A file uploaded with `upload.saveFilePart` (not the big-file call) is at most this large.
pub const SMALL_FILE_MAX: u64 = 10 * 1024 * 1024;
/// A download chunk is at most 1 MiB, and never crosses a 1 MiB boundary.
pub const CHUNK_MAX: i64 = 1024 * 1024;
/// How long a file reference handed out with a message stays good.
pub const REFERENCE_TTL_SECS: i64 = 24 * 3600;
/// Uploads whose last part is older than this are deleted (Telegram keeps them a day).
pub const UPLOAD_TTL_SECS: u64 = 24 * 3600;
/// A caption is at most this many UTF-16 units.
pub const CAPTION_MAX: usize = 1024;
pub const MIME_MAX: usize = 255;
pub const FILE_NAME_MAX: usize = 255;
/// A complete file nothing refers to is deleted once it is this old (a client may send a file
/// it made with `messages.uploadMedia` a while later).
pub const UNUSED_FILE_TTL_SECS: i64 = 24 * 3600;
/// A blob is deleted only after this long without being written or reused, so that one just
/// assembled is never taken before its file is recorded.
pub const BLOB_GRACE_SECS: u64 = 3600;
/// Files and blobs one collection round looks at (the rest wait for the next round).
pub const COLLECT_BATCH: usize = 10_000;

/// How much an account and the server may store (docs/security.md §3.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// Bytes one account may keep in stored files plus uploads in progress (0: no quota).
    pub quota_bytes: u64,
    /// Uploads are refused while less than this much disk is free where blobs are written.
    pub free_floor_bytes: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self { quota_bytes: 20 << 30, free_floor_bytes: 1 << 30 }
    }
}

/// Whether `incoming` more bytes fit: the account's quota over what it `holds` (stored files
/// and parts), and the server's floor under what is `free` on disk (None: no such limit).
pub fn check_space(limits: FileLimits, holds: u64, free: Option<u64>, incoming: u64) -> Result<(), FileError> {
    if limits.quota_bytes > 0 && holds.saturating_add(incoming) > limits.quota_bytes {
        return Err(FileError::QuotaExceeded);
    }
    if free.is_some_and(|f| f < limits.free_floor_bytes.saturating_add(incoming)) {
        return Err(FileError::StorageFull);
    }
    Ok(())
}

/// An upload as a message names it (`inputFile` / `inputFileBig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub file_id: i64,
    pub parts: i32,
    /// Sent with `upload.saveBigFilePart`.
    pub big: bool,
    /// Hex MD5 of the whole file, which small uploads may carry (empty: none).
    pub md5: String,
    pub name: String,
}

/// The checks on one part as it arrives. `total` is the declared part count of a big upload.
pub fn check_part(part: i32, total: Option<i32>, len: usize) -> Result<(), FileError> {
    if let Some(t) = total {
        if !(1..=PARTS_MAX).contains(&t) {
            return Err(FileError::PartsInvalid);
        }
    }
    if part < 0 || part >= total.unwrap_or(PARTS_MAX) {
        return Err(FileError::PartInvalid);
    }
    if len == 0 {
        return Err(FileError::PartEmpty);
    }
    if len > PART_MAX {
        return Err(FileError::PartSizeInvalid);
    }
    Ok(())
}

/// The checks on a whole upload's parts when it is used: all there, each but the last of
/// one size that is a multiple of 1 KiB dividing 512 KiB, the last no larger. Returns the
/// file's size.
pub fn check_part_sizes(sizes: &[Option<u64>], big: bool) -> Result<u64, FileError> {
    if sizes.is_empty() || sizes.len() > PARTS_MAX as usize {
        return Err(FileError::PartsInvalid);
    }
    let mut total = 0u64;
    for (i, s) in sizes.iter().enumerate() {
        let Some(s) = s else { return Err(FileError::PartMissing(i as i32)) };
        total += s;
    }
    if sizes.len() > 1 {
        let first = sizes[0].unwrap_or(0);
        let valid = first > 0 && first.is_multiple_of(1024) && (PART_MAX as u64).is_multiple_of(first);
        let same = sizes[..sizes.len() - 1].iter().all(|s| *s == Some(first));
        let last_fits = sizes[sizes.len() - 1].is_some_and(|l| l <= first);
        if !(valid && same && last_fits) {
            return Err(FileError::PartSizeInvalid);
        }
    }
    if !big && total > SMALL_FILE_MAX {
        return Err(FileError::PartsInvalid);
    }
    Ok(total)
}

/// `upload.getFile`'s range rules: offset a multiple of 4 KiB (1 KiB in `precise` mode), limit
/// a positive multiple of 4 KiB (1 KiB in precise mode) up to 1 MiB, and the chunk inside one
/// 1 MiB block.
pub fn check_range(offset: i64, limit: i32, precise: bool) -> Result<(), FileError> {
    let unit = if precise { 1024 } else { 4096 };
    if offset < 0 || offset % unit != 0 {
        return Err(FileError::OffsetInvalid);
    }
    let limit = limit as i64;
    if limit <= 0 || limit % unit != 0 || limit > CHUNK_MAX || offset / CHUNK_MAX != (offset + limit - 1) / CHUNK_MAX {
        return Err(FileError::LimitInvalid);
    }
    Ok(())
}

/// A mime type as Telegram takes it: `type/subtype`, printable ASCII, bounded.
pub fn check_mime(mime: &str) -> Result<(), FileError> {
    let ok = mime.len() <= MIME_MAX && mime.split_once('/').is_some_and(|(t, s)| !t.is_empty() && !s.is_empty()) && mime.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(FileError::MimeInvalid)
    }
}

pub struct FileService {
    blobs: Arc<dyn BlobStore>,
    files: Arc<dyn FileStore>,
    secret: [u8; 32],
    clock: Arc<dyn Clock>,
    dc_id: i32,
    limits: FileLimits,
    reference_ttl: i64,
}

impl FileService {
    /// `dc_id`: the DC files are said to live on (this server's; clients fetch them there).
    pub fn new(blobs: Arc<dyn BlobStore>, files: Arc<dyn FileStore>, secret: [u8; 32], clock: Arc<dyn Clock>, dc_id: i32) -> Self {
        Self { blobs, files, secret, clock, dc_id, limits: FileLimits::default(), reference_ttl: REFERENCE_TTL_SECS }
    }

    /// How long file references stay good (`file_reference_secs`; short ones are for tests of
    /// the clients' refetch path).
    pub fn with_reference_ttl(mut self, secs: i64) -> Self {
        self.reference_ttl = secs.max(1);
        self
    }

    pub fn with_limits(mut self, limits: FileLimits) -> Self {
        self.limits = limits;
        self
    }

    /// What `owner` holds: stored files and parts of uploads in progress.
    async fn holds(&self, owner: UserId) -> Result<u64> {
        let stored = self.files.stored_bytes(owner).await?.max(0) as u64;
        Ok(stored + self.blobs.held_bytes(owner).await?)
    }

    pub fn dc_id(&self) -> i32 {
        self.dc_id
    }

    /// `upload.saveFilePart` (`total` None) and `upload.saveBigFilePart`.
    pub async fn save_part(&self, owner: UserId, file_id: i64, part: i32, total: Option<i32>, bytes: Vec<u8>) -> Result<()> {
        check_part(part, total, bytes.len())?;
        let (holds, free) = (self.holds(owner).await?, self.blobs.free_bytes().await?);
        check_space(self.limits, holds, free, bytes.len() as u64)?;
        Ok(self.blobs.put_part(UploadId { owner, file_id }, part, bytes).await?)
    }

    /// Turns an upload into a stored file: every part there and of the right sizes, the MD5
    /// right where the client gave one. A `thumb` upload that decodes as an image becomes the
    /// document's thumbnail (one that does not is dropped, the document is still sent).
    pub async fn complete(&self, owner: UserId, up: &Uploaded, mime: &str, mut attributes: Vec<DocAttr>, thumb: Option<&Uploaded>) -> Result<FileMeta> {
        check_mime(mime)?;
        let made = self.assemble(owner, up, u64::MAX).await?;
        for a in &mut attributes {
            if let DocAttr::Filename(n) = a {
                *n = clean_name(n);
            }
        }
        if !attributes.iter().any(|a| matches!(a, DocAttr::Filename(_))) && !up.name.is_empty() {
            attributes.push(DocAttr::Filename(clean_name(&up.name)));
        }
        let (sizes, stripped) = match thumb {
            Some(t) => match self.made_photo(owner, t, crate::photos::THUMB_BYTES_MAX, crate::photos::make_thumb).await {
                Ok((sizes, stripped)) => (sizes, Some(stripped)),
                Err(e) => {
                    tracing::debug!(error = %e, "a document's thumbnail was dropped");
                    (vec![], None)
                }
            },
            None => (vec![], None),
        };
        let f = NewFile {
            owner,
            blob: made.blob.clone(),
            size: made.size,
            mime: mime.to_string(),
            date: self.clock.now_secs() as i32,
            attributes,
            sizes,
            stripped,
        };
        let file = self.files.create_file(f).await?;
        // Recorded: the parts' bytes now count as the file, not as held parts.
        self.blobs.release(UploadId { owner, file_id: up.file_id }, up.parts, &made).await?;
        Ok(file)
    }

    /// An upload checked and assembled: parts all there and of the right sizes, at most `max`
    /// bytes (`PHOTO_INVALID` past it), room on disk, the MD5 right where the client gave one.
    async fn assemble(&self, owner: UserId, up: &Uploaded, max: u64) -> Result<crate::store::Assembled> {
        if !(1..=PARTS_MAX).contains(&up.parts) {
            return Err(FileError::PartsInvalid.into());
        }
        let id = UploadId { owner, file_id: up.file_id };
        let total = check_part_sizes(&self.blobs.part_sizes(id, up.parts).await?, up.big)?;
        if total > max {
            return Err(FileError::PhotoInvalid.into());
        }
        self.room_to_assemble(total).await?;
        let check_md5 = !up.big && !up.md5.is_empty();
        let made = self.blobs.assemble(id, up.parts, check_md5).await?;
        if check_md5 && !made.md5.is_some_and(|m| up.md5.eq_ignore_ascii_case(&hex(&m))) {
            return Err(FileError::Md5Invalid.into());
        }
        Ok(made)
    }

    /// An upload decoded as an image by `make` (off the async threads) and its JPEGs stored:
    /// the sizes, smallest first, and the stripped thumbnail.
    async fn made_photo(
        &self,
        owner: UserId,
        up: &Uploaded,
        max: u64,
        make: fn(&[u8]) -> Result<crate::photos::MadePhoto, FileError>,
    ) -> Result<(Vec<PhotoSize>, Vec<u8>)> {
        let made = self.assemble(owner, up, max).await?;
        let bytes = self.blobs.read(&made.blob, 0, made.size as usize).await?;
        let photo = tokio::task::spawn_blocking(move || make(&bytes)).await.map_err(|e| crate::error::StoreError::Backend(format!("photo task: {e}")))??;
        let mut stored = Vec::with_capacity(photo.sizes.len());
        for m in photo.sizes {
            let a = self.blobs.store(m.jpeg).await?;
            stored.push(PhotoSize { kind: m.kind.to_string(), w: m.w as i32, h: m.h as i32, size: a.size, blob: a.blob });
        }
        // Made into sizes: the upload is spent (its own blob, which no file names, is collected
        // once idle). An upload that is no image stays held until it expires.
        self.blobs.release(UploadId { owner, file_id: up.file_id }, up.parts, &made).await?;
        Ok((stored, photo.stripped))
    }

    /// Turns an upload into a photo: decoded (`PHOTO_INVALID` when it is not one) and stored
    /// in Telegram's sizes ([`crate::photos`]) with its stripped thumbnail.
    pub async fn complete_photo(&self, owner: UserId, up: &Uploaded) -> Result<FileMeta> {
        let (sizes, stripped) = self.made_photo(owner, up, crate::photos::PHOTO_BYTES_MAX, crate::photos::make_photo).await?;
        let best = sizes.last().cloned().ok_or(FileError::PhotoInvalid)?;
        let f = NewFile {
            owner,
            blob: best.blob,
            size: best.size,
            mime: "image/jpeg".into(),
            date: self.clock.now_secs() as i32,
            attributes: vec![],
            sizes,
            stripped: Some(stripped),
        };
        Ok(self.files.create_file(f).await?)
    }

    /// Assembly writes the file once more before its parts go: the floor must still hold.
    async fn room_to_assemble(&self, size: u64) -> Result<()> {
        check_space(FileLimits { quota_bytes: 0, ..self.limits }, 0, self.blobs.free_bytes().await?, size)?;
        Ok(())
    }

    /// Deletes files nothing refers to any more (older than [`UNUSED_FILE_TTL_SECS`]), then
    /// the blobs no file is stored as (idle for `blob_grace_secs`). Run by the server's
    /// maintenance; returns how many files and blobs went.
    pub async fn collect(&self, blob_grace_secs: u64) -> Result<usize> {
        let before = (self.clock.now_secs() - UNUSED_FILE_TTL_SECS) as i32;
        let mut gone = self.files.delete_unused_files(before, COLLECT_BATCH).await?;
        for blob in self.blobs.idle_blobs(blob_grace_secs, COLLECT_BATCH).await? {
            if !self.files.blob_in_use(&blob).await? && self.blobs.delete_if_idle(&blob, blob_grace_secs).await? {
                gone += 1;
            }
        }
        Ok(gone)
    }

    /// The access hash `viewer` is given for file `id`.
    pub fn access_hash(&self, viewer: UserId, id: i64) -> i64 {
        let h = Sha256::new()
            .chain_update(self.secret)
            .chain_update(b"file-access-hash")
            .chain_update(viewer.0.to_le_bytes())
            .chain_update(id.to_le_bytes())
            .finalize();
        i64::from_le_bytes(h[..8].try_into().unwrap())
    }

    /// A file reference for `id`, good for the reference lifetime ([`REFERENCE_TTL_SECS`] by
    /// default) to an hour more: its expiry (on the hour, so that one rendering serves every
    /// receiver of a post; on a finer step when the lifetime is under an hour) and a keyed MAC
    /// of the file and the expiry (12 bytes).
    pub fn reference(&self, id: i64) -> Vec<u8> {
        let (ttl, step) = (self.reference_ttl, self.reference_ttl.clamp(1, 3600));
        let until = ((self.clock.now_secs() + ttl) / step * step + step) as u32;
        let mut r = until.to_le_bytes().to_vec();
        r.extend_from_slice(&self.reference_mac(id, until));
        r
    }

    fn reference_mac(&self, id: i64, until: u32) -> [u8; 8] {
        let h =
            Sha256::new().chain_update(self.secret).chain_update(b"file-reference").chain_update(id.to_le_bytes()).chain_update(until.to_le_bytes()).finalize();
        h[..8].try_into().unwrap()
    }

    fn check_reference(&self, id: i64, r: &[u8]) -> Result<(), FileError> {
        let (Some(until), Some(mac)) = (r.get(..4), r.get(4..12)) else { return Err(FileError::ReferenceInvalid) };
        let until = u32::from_le_bytes(until.try_into().unwrap());
        if r.len() != 12 || !bool::from(subtle_eq(mac, &self.reference_mac(id, until))) {
            return Err(FileError::ReferenceInvalid);
        }
        if (until as i64) <= self.clock.now_secs() {
            return Err(FileError::ReferenceExpired);
        }
        Ok(())
    }

    /// The file `viewer` names with `id` and `access_hash` (and, for downloads and resends,
    /// `reference`): known, addressed with the viewer's own hash, and visible to them.
    pub async fn resolve(&self, viewer: UserId, id: i64, access_hash: i64, reference: Option<&[u8]>) -> Result<FileMeta> {
        if access_hash != self.access_hash(viewer, id) {
            return Err(FileError::FileIdInvalid.into());
        }
        if let Some(r) = reference {
            self.check_reference(id, r)?;
        }
        let Some(f) = self.files.file(id).await? else { return Err(FileError::FileIdInvalid.into()) };
        if !self.files.file_visible(viewer, id).await? {
            return Err(FileError::FileIdInvalid.into());
        }
        Ok(f)
    }

    /// File `id`'s metadata (no access check: for files the caller already vouched for).
    pub async fn file(&self, id: i64) -> Result<Option<FileMeta>> {
        Ok(self.files.file(id).await?)
    }

    /// `upload.getFile`: bytes `offset..offset+limit` of `f` (fewer at its end, none past it),
    /// or of its size `kind` (a photo's `s`, `m`…; `LOCATION_INVALID` when it has none such).
    pub async fn read(&self, f: &FileMeta, kind: &str, offset: i64, limit: i32, precise: bool) -> Result<Vec<u8>> {
        check_range(offset, limit, precise)?;
        let (blob, size) = if kind.is_empty() {
            (&f.blob, f.size)
        } else {
            let s = f.sizes.iter().find(|s| s.kind == kind).ok_or(FileError::LocationInvalid)?;
            (&s.blob, s.size)
        };
        if offset >= size {
            return Ok(Vec::new());
        }
        Ok(self.blobs.read(blob, offset as u64, limit as usize).await?)
    }

    /// Deletes uploads older than [`UPLOAD_TTL_SECS`] (run by the server's maintenance).
    pub async fn expire_uploads(&self) -> Result<usize> {
        Ok(self.blobs.expire_uploads(UPLOAD_TTL_SECS).await?)
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> subtle::Choice {
    use subtle::ConstantTimeEq;
    a.ct_eq(b)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string of even length (None when it is not one).
pub fn unhex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len() / 2).map(|i| h.get(2 * i..2 * i + 2).and_then(|x| u8::from_str_radix(x, 16).ok())).collect()
}

/// A file name as stored: control characters dropped, at most [`FILE_NAME_MAX`] characters.
fn clean_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(FILE_NAME_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_checked_as_they_come() {
        assert_eq!(check_part(0, None, 1), Ok(()));
        assert_eq!(check_part(7999, None, PART_MAX), Ok(()));
        assert_eq!(check_part(8000, None, 1024), Err(FileError::PartInvalid));
        assert_eq!(check_part(-1, None, 1024), Err(FileError::PartInvalid));
        assert_eq!(check_part(0, None, 0), Err(FileError::PartEmpty));
        assert_eq!(check_part(0, None, PART_MAX + 1), Err(FileError::PartSizeInvalid));
        assert_eq!(check_part(3, Some(4), 1024), Ok(()));
        assert_eq!(check_part(4, Some(4), 1024), Err(FileError::PartInvalid));
        assert_eq!(check_part(0, Some(0), 1024), Err(FileError::PartsInvalid));
        assert_eq!(check_part(0, Some(8001), 1024), Err(FileError::PartsInvalid));
    }

    #[test]
    fn part_sizes_follow_telegrams_rules() {
        let k = |n: u64| Some(n * 1024);
        assert_eq!(check_part_sizes(&[Some(5)], false), Ok(5), "one part of any size");
        assert_eq!(check_part_sizes(&[k(128), k(128), Some(10)], false), Ok(256 * 1024 + 10));
        assert_eq!(check_part_sizes(&[k(512), k(512)], true), Ok(1024 * 1024), "the last may be full");
        assert_eq!(check_part_sizes(&[k(128), None, k(1)], false), Err(FileError::PartMissing(1)));
        assert_eq!(check_part_sizes(&[None], false), Err(FileError::PartMissing(0)));
        assert_eq!(check_part_sizes(&[k(3), k(3)], false), Err(FileError::PartSizeInvalid), "3 KiB does not divide 512 KiB");
        assert_eq!(check_part_sizes(&[Some(1000), Some(1000)], false), Err(FileError::PartSizeInvalid), "not whole KiB");
        assert_eq!(check_part_sizes(&[k(128), k(64), k(1)], false), Err(FileError::PartSizeInvalid), "sizes differ");
        assert_eq!(check_part_sizes(&[k(64), k(128)], false), Err(FileError::PartSizeInvalid), "the last is larger");
        assert_eq!(check_part_sizes(&[], false), Err(FileError::PartsInvalid));
        let eleven_mib = vec![k(512); 22];
        assert_eq!(check_part_sizes(&eleven_mib, false), Err(FileError::PartsInvalid), "small uploads stop at 10 MiB");
        assert_eq!(check_part_sizes(&eleven_mib, true), Ok(11 * 1024 * 1024));
    }

    #[test]
    fn download_ranges_follow_telegrams_rules() {
        assert_eq!(check_range(0, 128 * 1024, false), Ok(()));
        assert_eq!(check_range(3 * 1024 * 1024, 1024 * 1024, false), Ok(()));
        assert_eq!(check_range(512 * 1024, 512 * 1024, false), Ok(()));
        assert_eq!(check_range(1024, 4096, false), Err(FileError::OffsetInvalid));
        assert_eq!(check_range(1024, 4096, true), Ok(()), "precise mode: 1 KiB units");
        assert_eq!(check_range(-4096, 4096, false), Err(FileError::OffsetInvalid));
        assert_eq!(check_range(0, 1000, false), Err(FileError::LimitInvalid));
        assert_eq!(check_range(0, 0, false), Err(FileError::LimitInvalid));
        assert_eq!(check_range(0, 2 * 1024 * 1024, false), Err(FileError::LimitInvalid));
        assert_eq!(check_range(768 * 1024, 512 * 1024, false), Err(FileError::LimitInvalid), "crosses a 1 MiB boundary");
        assert_eq!(check_range(1024 * 1024 - 4096, 8192, false), Err(FileError::LimitInvalid));
    }

    #[test]
    fn quota_and_floor_have_known_answers() {
        let l = FileLimits { quota_bytes: 1000, free_floor_bytes: 100 };
        assert_eq!(check_space(l, 900, Some(1_000), 100), Ok(()), "exactly at the quota");
        assert_eq!(check_space(l, 901, Some(1_000), 100), Err(FileError::QuotaExceeded));
        assert_eq!(check_space(l, 0, Some(200), 100), Ok(()), "exactly at the floor");
        assert_eq!(check_space(l, 0, Some(199), 100), Err(FileError::StorageFull));
        assert_eq!(check_space(l, 0, None, 100), Ok(()), "a backend without a disk");
        let unlimited = FileLimits { quota_bytes: 0, ..l };
        assert_eq!(check_space(unlimited, u64::MAX, None, u64::MAX), Ok(()), "no quota, no overflow");
        assert_eq!(check_space(l, u64::MAX, None, 1), Err(FileError::QuotaExceeded), "no overflow past the quota");
    }

    #[test]
    fn mime_types_are_type_slash_subtype() {
        assert_eq!(check_mime("application/octet-stream"), Ok(()));
        assert_eq!(check_mime("text/plain;charset=utf-8"), Ok(()));
        for bad in ["", "text", "/plain", "text/", "text/pl ain", "téxt/plain"] {
            assert_eq!(check_mime(bad), Err(FileError::MimeInvalid), "{bad:?}");
        }
        assert_eq!(check_mime(&format!("a/{}", "b".repeat(300))), Err(FileError::MimeInvalid));
    }
}
