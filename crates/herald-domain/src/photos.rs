//! Photos: what a user sends as a photo is decoded (with limits, so that a decompression bomb
//! is refused instead of exhausting memory) and re-encoded as JPEG in Telegram's sizes, each
//! named by a letter and bounded by its longest side (docs/client-compat.md §4.21). CPU
//! work: callers run it on the blocking pool.

use crate::error::FileError;
use image::{DynamicImage, ImageReader, Limits};
use std::io::Cursor;

/// Telegram's photo sizes: the letter and the longest side it is scaled to fit.
pub const SIZES: [(&str, u32); 5] = [("s", 100), ("m", 320), ("x", 800), ("y", 1280), ("w", 2560)];
/// The largest photo taken (upload size).
pub const PHOTO_BYTES_MAX: u64 = 10 * 1024 * 1024;
/// The largest width or height decoded, and the most pixels: past them, `PHOTO_INVALID`.
pub const SIDE_MAX: u32 = 10_000;
pub const PIXELS_MAX: u64 = 50_000_000;
/// Memory the decoder may allocate for one photo.
pub const DECODE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Telegram's sides must not be too far apart (20:1 at most).
pub const RATIO_MAX: u32 = 20;
const JPEG_QUALITY: u8 = 87;

/// One size made from a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub kind: &'static str,
    pub w: u32,
    pub h: u32,
    pub jpeg: Vec<u8>,
}

/// The sizes of a photo: every size smaller than the photo, then one at the photo's own size
/// (or the largest, 2560), so the last is always the best. Anything that does not decode
/// within the limits, or has a side of 0 or sides more than 20:1 apart, is `PHOTO_INVALID`.
pub fn make_sizes(bytes: &[u8]) -> Result<Vec<Made>, FileError> {
    sizes_of(&decode(bytes)?)
}

/// A photo made from an upload: its sizes and its stripped thumbnail.
pub struct MadePhoto {
    pub sizes: Vec<Made>,
    pub stripped: Vec<u8>,
}

/// [`make_sizes`] and the stripped thumbnail ([`crate::stripped`]), from one decoding.
pub fn make_photo(bytes: &[u8]) -> Result<MadePhoto, FileError> {
    let img = decode(bytes)?;
    Ok(MadePhoto { sizes: sizes_of(&img)?, stripped: crate::stripped::stripped(&img) })
}

/// A document's thumbnail as the uploader gave it: decoded under the same limits, made to fit
/// 320 px (type `m`), with its stripped thumbnail. Telegram asks for a JPEG of at most 200 KB
/// and 320 px; anything that decodes is taken.
pub fn make_thumb(bytes: &[u8]) -> Result<MadePhoto, FileError> {
    let img = decode(bytes)?;
    let scaled = fit(&img, THUMB_SIDE);
    let m = Made { kind: "m", w: scaled.width(), h: scaled.height(), jpeg: jpeg(&scaled)? };
    Ok(MadePhoto { sizes: vec![m], stripped: crate::stripped::stripped(&img) })
}

/// The longest side of a document's thumbnail.
pub const THUMB_SIDE: u32 = 320;
/// A document's thumbnail upload is at most this large (Telegram: 200 KB; some slack).
pub const THUMB_BYTES_MAX: u64 = 1024 * 1024;

/// `img` made to fit `side` px on its longest side (itself when it fits already).
fn fit(img: &DynamicImage, side: u32) -> DynamicImage {
    if img.width().max(img.height()) <= side {
        img.clone()
    } else {
        img.thumbnail(side, side)
    }
}

fn sizes_of(img: &DynamicImage) -> Result<Vec<Made>, FileError> {
    let longest = img.width().max(img.height());
    let mut out = Vec::new();
    for (kind, side) in SIZES {
        let last = longest <= side || side == SIZES[SIZES.len() - 1].1;
        let scaled = fit(img, side);
        out.push(Made { kind, w: scaled.width(), h: scaled.height(), jpeg: jpeg(&scaled)? });
        if last {
            break;
        }
    }
    Ok(out)
}

/// A reader of `bytes` under the decoding limits.
fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, FileError> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|_| FileError::PhotoInvalid)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(SIDE_MAX);
    limits.max_image_height = Some(SIDE_MAX);
    limits.max_alloc = Some(DECODE_BYTES_MAX);
    reader.limits(limits);
    Ok(reader)
}

/// The image in `bytes`, decoded within the limits, with sides of sane proportions.
fn decode(bytes: &[u8]) -> Result<DynamicImage, FileError> {
    if bytes.len() as u64 > PHOTO_BYTES_MAX {
        return Err(FileError::PhotoInvalid);
    }
    let (w, h) = reader(bytes)?.into_dimensions().map_err(|_| FileError::PhotoInvalid)?;
    if w == 0 || h == 0 || w as u64 * h as u64 > PIXELS_MAX || w.max(h) / w.min(h) > RATIO_MAX {
        return Err(FileError::PhotoInvalid);
    }
    // The dimensions were read by a first reader; a second one decodes.
    reader(bytes)?.decode().map_err(|_| FileError::PhotoInvalid)
}

fn jpeg(img: &DynamicImage) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::new();
    let rgb = img.to_rgb8();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode_image(&rgb).map_err(|_| FileError::PhotoInvalid)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    fn shape(made: &[Made]) -> Vec<(&str, u32, u32)> {
        made.iter().map(|m| (m.kind, m.w, m.h)).collect()
    }

    #[test]
    fn sizes_fit_their_boxes_and_stop_at_the_photo() {
        let made = make_sizes(&png(1000, 500)).unwrap();
        assert_eq!(shape(&made), [("s", 100, 50), ("m", 320, 160), ("x", 800, 400), ("y", 1000, 500)]);
        for m in &made {
            let back = image::load_from_memory_with_format(&m.jpeg, ImageFormat::Jpeg).unwrap();
            assert_eq!((back.width(), back.height()), (m.w, m.h), "{} is a JPEG of its size", m.kind);
        }
        assert_eq!(shape(&make_sizes(&png(90, 60)).unwrap()), [("s", 90, 60)], "a small photo: one size, its own");
        assert_eq!(shape(&make_sizes(&png(320, 320)).unwrap()), [("s", 100, 100), ("m", 320, 320)]);
        let huge = make_sizes(&png(3000, 1500)).unwrap();
        assert_eq!(huge.last().map(|m| (m.kind, m.w, m.h)), Some(("w", 2560, 1280)), "capped at 2560");
    }

    #[test]
    fn what_is_not_a_sane_photo_is_invalid() {
        assert_eq!(make_sizes(b"not an image"), Err(FileError::PhotoInvalid));
        assert_eq!(make_sizes(&png(10, 10)[..40]), Err(FileError::PhotoInvalid), "truncated");
        assert_eq!(make_sizes(&png(2100, 100)), Err(FileError::PhotoInvalid), "sides 21:1 apart");
    }

    /// A PNG that claims 100 000 × 100 000 pixels (40 GB decoded) in a few hundred bytes: refused
    /// from its header, before any allocation.
    #[test]
    fn a_decompression_bomb_is_refused_without_decoding() {
        let mut bomb = png(1, 1);
        // IHDR's width and height sit at bytes 16..24; its CRC at 29..33 is then wrong, which
        // a decoder that checks it also refuses: both ways the answer is PHOTO_INVALID.
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(make_sizes(&bomb), Err(FileError::PhotoInvalid));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in data {
            c ^= *b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
}
