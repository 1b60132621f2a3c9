//! Stripped thumbnails (`photoStrippedSize`, type `i`): a photo shrunk to fit 40×40 and
//! encoded as a baseline JPEG whose headers every client already has. Telegram sends only
//! `[1, height, width]` and the entropy-coded scan; clients prepend a fixed header (JFIF,
//! quality-20 quantisation tables, a 4:2:0 frame, the standard Huffman tables) with the
//! height and width patched in, and append the end-of-image marker (docs/client-compat.md
//! §4.21). So the scan must be made with exactly those tables: this module parses them out of
//! [`HEADER`] and encodes against them (the `image` crate's encoder writes 4:4:4 with tables
//! of its own, so it cannot be used here).

use image::DynamicImage;

/// The header clients prepend (623 bytes; height at [`HEIGHT_AT`], width at [`WIDTH_AT`]).
pub const HEADER: [u8; 623] = [
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x28,
    0x1c, 0x1e, 0x23, 0x1e, 0x19, 0x28, 0x23, 0x21, 0x23, 0x2d, 0x2b, 0x28, 0x30, 0x3c, 0x64, 0x41, 0x3c, 0x37, 0x37, 0x3c, 0x7b, 0x58, 0x5d, 0x49, 0x64, 0x91,
    0x80, 0x99, 0x96, 0x8f, 0x80, 0x8c, 0x8a, 0xa0, 0xb4, 0xe6, 0xc3, 0xa0, 0xaa, 0xda, 0xad, 0x8a, 0x8c, 0xc8, 0xff, 0xcb, 0xda, 0xee, 0xf5, 0xff, 0xff, 0xff,
    0x9b, 0xc1, 0xff, 0xff, 0xff, 0xfa, 0xff, 0xe6, 0xfd, 0xff, 0xf8, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x2b, 0x2d, 0x2d, 0x3c, 0x35, 0x3c, 0x76, 0x41, 0x41, 0x76,
    0xf8, 0xa5, 0x8c, 0xa5, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8,
    0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8,
    0xf8, 0xf8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x00, 0x1f, 0x00,
    0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03,
    0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15,
    0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38,
    0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2,
    0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
    0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
    0xf8, 0xf9, 0xfa, 0xff, 0xc4, 0x00, 0x1f, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x11, 0x00, 0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04,
    0x04, 0x00, 0x01, 0x02, 0x77, 0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08,
    0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a,
    0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
    0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
    0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9,
    0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
    0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00,
];
pub const HEIGHT_AT: usize = 164;
pub const WIDTH_AT: usize = 166;
/// The longest side of a stripped thumbnail.
pub const SIDE: u32 = 40;

/// Natural (row-major) index of the i-th coefficient in zig-zag order.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29,
    22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A Huffman table as codes by symbol: (length, code).
type Codes = [(u8, u16); 256];

struct Tables {
    /// Quantisation tables 0 (luma) and 1 (chroma), in natural order.
    quant: [[u16; 64]; 2],
    /// DC and AC code tables for luma (0) and chroma (1).
    dc: [Codes; 2],
    ac: [Codes; 2],
}

/// Reads the quantisation and Huffman tables out of [`HEADER`]'s DQT and DHT segments.
fn tables() -> Tables {
    let mut t = Tables { quant: [[1; 64]; 2], dc: [[(0, 0); 256]; 2], ac: [[(0, 0); 256]; 2] };
    let mut at = 2;
    while at + 4 <= HEADER.len() {
        let (marker, len) = (HEADER[at + 1], u16::from_be_bytes([HEADER[at + 2], HEADER[at + 3]]) as usize);
        let seg = &HEADER[at + 4..at + 2 + len];
        match marker {
            0xdb => {
                let id = (seg[0] & 0x0f) as usize;
                for (i, &q) in seg[1..65].iter().enumerate() {
                    t.quant[id][ZIGZAG[i]] = q as u16;
                }
            }
            0xc4 => {
                let (class, id) = (seg[0] >> 4, (seg[0] & 0x0f) as usize);
                let counts = &seg[1..17];
                let symbols = &seg[17..];
                // Canonical codes (JPEG Annex C): lengths ascending, codes counting up.
                let (mut code, mut k) = (0u16, 0usize);
                let table = if class == 0 { &mut t.dc[id] } else { &mut t.ac[id] };
                for (len, &n) in counts.iter().enumerate() {
                    for _ in 0..n {
                        table[symbols[k] as usize] = (len as u8 + 1, code);
                        code += 1;
                        k += 1;
                    }
                    code <<= 1;
                }
            }
            _ => {}
        }
        at += 2 + len;
    }
    t
}

struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u8,
}

impl Bits {
    fn put(&mut self, len: u8, bits: u16) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | ((bits >> i) & 1) as u32;
            self.n += 1;
            if self.n == 8 {
                let b = self.acc as u8;
                self.out.push(b);
                if b == 0xff {
                    self.out.push(0); // byte stuffing
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.put(8 - self.n, 0xff); // pad with one bits
        }
        self.out
    }
}

/// A coefficient's size category and its bits (negative values as value - 1, low bits).
fn category(v: i32) -> (u8, u16) {
    let size = (32 - v.unsigned_abs().leading_zeros()) as u8;
    let bits = if v < 0 { (v - 1) as u16 & ((1u32 << size) - 1) as u16 } else { v as u16 };
    (size, bits)
}

/// The DCT's cosines: `COS[u][x]` = cos((2x + 1)·u·π/16).
fn cosines() -> [[f32; 8]; 8] {
    let mut c = [[0f32; 8]; 8];
    for (u, row) in c.iter_mut().enumerate() {
        for (x, v) in row.iter_mut().enumerate() {
            *v = (((2 * x + 1) * u) as f32 * std::f32::consts::PI / 16.0).cos();
        }
    }
    c
}

/// Forward DCT of one level-shifted 8×8 block, quantised, in natural order.
fn fdct_quant(block: &[f32; 64], q: &[u16; 64], cos: &[[f32; 8]; 8]) -> [i32; 64] {
    let mut out = [0i32; 64];
    for v in 0..8 {
        for u in 0..8 {
            let mut sum = 0f32;
            for y in 0..8 {
                for x in 0..8 {
                    sum += block[y * 8 + x] * cos[u][x] * cos[v][y];
                }
            }
            let cu = if u == 0 { std::f32::consts::FRAC_1_SQRT_2 } else { 1.0 };
            let cv = if v == 0 { std::f32::consts::FRAC_1_SQRT_2 } else { 1.0 };
            out[v * 8 + u] = (0.25 * cu * cv * sum / q[v * 8 + u] as f32).round() as i32;
        }
    }
    out
}

fn encode_block(bits: &mut Bits, coef: &[i32; 64], pred: &mut i32, dc: &Codes, ac: &Codes) {
    let (size, v) = category(coef[0] - *pred);
    *pred = coef[0];
    bits.put(dc[size as usize].0, dc[size as usize].1);
    bits.put(size, v);
    let mut run = 0;
    for &k in &ZIGZAG[1..] {
        let c = coef[k];
        if c == 0 {
            run += 1;
            continue;
        }
        while run > 15 {
            bits.put(ac[0xf0].0, ac[0xf0].1);
            run -= 16;
        }
        let (size, v) = category(c);
        let sym = (run << 4 | size) as usize;
        bits.put(ac[sym].0, ac[sym].1);
        bits.put(size, v);
        run = 0;
    }
    if run > 0 {
        bits.put(ac[0].0, ac[0].1);
    }
}

/// The stripped thumbnail of `img`: `[1, height, width]` and the scan.
pub fn stripped(img: &DynamicImage) -> Vec<u8> {
    let small = img.thumbnail(SIDE, SIDE).to_rgb8();
    let (w, h) = (small.width() as usize, small.height() as usize);
    let (t, cos) = (tables(), cosines());
    // YCbCr (JFIF), the edges repeated out to whole 16×16 units.
    let (pw, ph) = (w.div_ceil(16) * 16, h.div_ceil(16) * 16);
    let mut planes = vec![vec![0f32; pw * ph]; 3];
    for y in 0..ph {
        for x in 0..pw {
            let p = small.get_pixel(x.min(w - 1) as u32, y.min(h - 1) as u32).0;
            let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
            planes[0][y * pw + x] = 0.299 * r + 0.587 * g + 0.114 * b;
            planes[1][y * pw + x] = -0.168_736 * r - 0.331_264 * g + 0.5 * b + 128.0;
            planes[2][y * pw + x] = 0.5 * r - 0.418_688 * g - 0.081_312 * b + 128.0;
        }
    }
    let mut bits = Bits { out: Vec::with_capacity(512), acc: 0, n: 0 };
    let mut pred = [0i32; 3];
    for my in (0..ph).step_by(16) {
        for mx in (0..pw).step_by(16) {
            // Four luma blocks, left to right and top to bottom.
            for (bx, by) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
                let mut block = [0f32; 64];
                for y in 0..8 {
                    for x in 0..8 {
                        block[y * 8 + x] = planes[0][(my + by + y) * pw + mx + bx + x] - 128.0;
                    }
                }
                encode_block(&mut bits, &fdct_quant(&block, &t.quant[0], &cos), &mut pred[0], &t.dc[0], &t.ac[0]);
            }
            // One block each of Cb and Cr, every 2×2 pixels averaged.
            for c in 1..3 {
                let mut block = [0f32; 64];
                for y in 0..8 {
                    for x in 0..8 {
                        let at = |dx: usize, dy: usize| planes[c][(my + 2 * y + dy) * pw + mx + 2 * x + dx];
                        block[y * 8 + x] = (at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1)) / 4.0 - 128.0;
                    }
                }
                encode_block(&mut bits, &fdct_quant(&block, &t.quant[1], &cos), &mut pred[c], &t.dc[1], &t.ac[1]);
            }
        }
    }
    let mut out = vec![1, h as u8, w as u8];
    out.extend(bits.finish());
    out
}

/// What a client makes of a stripped thumbnail: the whole JPEG.
pub fn to_jpeg(stripped: &[u8]) -> Option<Vec<u8>> {
    if stripped.len() < 3 || stripped[0] != 1 {
        return None;
    }
    let mut out = HEADER.to_vec();
    out[HEIGHT_AT] = stripped[1];
    out[WIDTH_AT] = stripped[2];
    out.extend_from_slice(&stripped[3..]);
    out.extend_from_slice(&[0xff, 0xd9]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GenericImageView, Rgb, RgbImage};

    #[test]
    fn the_tables_are_quality_20_and_the_standard_huffman_codes() {
        let t = tables();
        // Annex K's luminance table at IJG quality 20 (scale 250%): 16 → 40, 11 → 28.
        assert_eq!((t.quant[0][0], t.quant[0][1], t.quant[1][0]), (40, 28, 43));
        // Standard codes: luma DC category 0 is "00", luma AC EOB "1010", ZRL 11 bits.
        assert_eq!(t.dc[0][0], (2, 0b00));
        assert_eq!(t.ac[0][0x00], (4, 0b1010));
        assert_eq!(t.ac[0][0xf0], (11, 0b111_1111_1001));
        assert_eq!(t.dc[1][0], (2, 0b00));
    }

    #[test]
    fn values_have_known_categories() {
        assert_eq!(category(0), (0, 0));
        assert_eq!(category(1), (1, 1));
        assert_eq!(category(-1), (1, 0));
        assert_eq!(category(5), (3, 0b101));
        assert_eq!(category(-5), (3, 0b010));
        assert_eq!(category(-1023), (10, 0));
    }

    #[test]
    fn a_stripped_thumbnail_decodes_with_the_clients_header_to_the_photos_colours() {
        // Left half red, right half blue, 400×300: the thumbnail is 40×30.
        let img = RgbImage::from_fn(400, 300, |x, _| if x < 200 { Rgb([220, 30, 30]) } else { Rgb([30, 30, 220]) });
        let s = stripped(&DynamicImage::ImageRgb8(img));
        assert_eq!(&s[..3], &[1, 30, 40]);
        assert!(s.len() < 1024, "{} bytes", s.len());
        let jpeg = to_jpeg(&s).unwrap();
        let back = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
        assert_eq!(back.dimensions(), (40, 30));
        let (left, right) = (back.get_pixel(5, 15).0, back.get_pixel(35, 15).0);
        assert!(left[0] > 150 && left[2] < 100, "left is red: {left:?}");
        assert!(right[2] > 150 && right[0] < 100, "right is blue: {right:?}");
        // A one-pixel image and a tall one work too.
        for (w, h) in [(1, 1), (17, 300)] {
            let s = stripped(&DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([10, 200, 10]))));
            let back = image::load_from_memory(&to_jpeg(&s).unwrap()).unwrap();
            assert_eq!((back.width(), back.height()), (s[2] as u32, s[1] as u32));
            let p = back.get_pixel(0, 0).0;
            assert!(p[1] > 150 && p[0] < 60, "green: {p:?}");
        }
    }
}
