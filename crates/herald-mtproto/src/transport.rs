//! MTProto TCP transports, server side, sans-IO: bytes in, frames out; payloads in, bytes out.
//!
//! The first bytes of a connection pick the framing (client-compat.md §1.3): `0xef` abridged,
//! `eeeeeeee` intermediate, `dddddddd` padded intermediate, a plausible length followed by
//! seq 0 is TcpFull, and anything else is a 64-byte obfuscated2 header whose decrypted tag
//! names one of the first three. **Every length is checked against `max_frame` before any
//! buffer is allocated for it.**

use crate::rng::Rng;
use grammers_crypto::ObfuscatedCipher;

/// Why a connection must be closed. None of these get a reply: the stream can't be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("frame of {0} bytes exceeds the limit")]
    Oversized(usize),
    #[error("frame length {0} is invalid")]
    BadLength(usize),
    #[error("TcpFull CRC32 mismatch")]
    BadCrc,
    #[error("TcpFull sequence number {got}, expected {expected}")]
    BadSeq { got: u32, expected: u32 },
    #[error("obfuscated2 header carries an unknown protocol tag")]
    BadTag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Full,
    Abridged,
    Intermediate,
    PaddedIntermediate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportKind {
    pub framing: Framing,
    pub obfuscated: bool,
}

pub struct ServerTransport {
    kind: Option<TransportKind>,
    /// Boxed: its two AES-CTR states are a kilobyte, which plain transports would carry too.
    cipher: Option<Box<ObfuscatedCipher>>,
    buf: Vec<u8>,
    pos: usize,
    in_seq: u32,
    out_seq: u32,
    max_frame: usize,
}

const TAG_ABRIDGED: [u8; 4] = [0xef; 4];
const TAG_INTERMEDIATE: [u8; 4] = [0xee; 4];
const TAG_PADDED: [u8; 4] = [0xdd; 4];

impl ServerTransport {
    pub fn new(max_frame: usize) -> Self {
        Self { kind: None, cipher: None, buf: Vec::new(), pos: 0, in_seq: 0, out_seq: 0, max_frame }
    }

    pub fn kind(&self) -> Option<TransportKind> {
        self.kind
    }

    /// Appends bytes read from the socket.
    pub fn feed(&mut self, data: &[u8]) {
        // Drop consumed bytes so the buffer never holds more than one partial frame.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(data);
        if let Some(c) = self.cipher.as_mut() {
            c.encrypt(&mut self.buf[start..]);
        }
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Bytes received but not yet returned as a frame (a partial frame, or a header still
    /// being read).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes of memory the input buffer holds: what limits must count (at most about twice
    /// [`Self::buffered`] plus 64 KiB, see [`Self::compact`]).
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Drops the frames already taken and gives back memory the rest does not need: an idle
    /// connection keeps no capacity from its largest frame, and a small tail after a large
    /// frame does not keep that frame's buffer.
    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        if len == 0 {
            self.buf = Vec::new();
        } else if self.buf.capacity() > 64 * 1024 && self.buf.capacity() > 2 * len {
            self.buf.shrink_to(len);
        }
    }

    fn detect(&mut self) -> Result<bool, TransportError> {
        let a = self.avail();
        if a.is_empty() {
            return Ok(false);
        }
        if a[0] == 0xef {
            self.pos += 1;
            self.kind = Some(TransportKind { framing: Framing::Abridged, obfuscated: false });
            return Ok(true);
        }
        if a.len() < 4 {
            return Ok(false);
        }
        if a[..4] == TAG_INTERMEDIATE || a[..4] == TAG_PADDED {
            let framing = if a[0] == 0xee { Framing::Intermediate } else { Framing::PaddedIntermediate };
            self.pos += 4;
            self.kind = Some(TransportKind { framing, obfuscated: false });
            return Ok(true);
        }
        if a.len() < 8 {
            return Ok(false);
        }
        let len = u32::from_le_bytes(a[..4].try_into().unwrap()) as usize;
        if a[4..8] == [0, 0, 0, 0] && len >= 12 {
            self.kind = Some(TransportKind { framing: Framing::Full, obfuscated: false });
            return Ok(true);
        }
        if a.len() < 64 {
            return Ok(false);
        }
        let init: [u8; 64] = a[..64].try_into().unwrap();
        let mut cipher = ObfuscatedCipher::new(&init);
        let mut header = init;
        cipher.encrypt(&mut header);
        let framing = match header[56..60].try_into().unwrap() {
            TAG_ABRIDGED => Framing::Abridged,
            TAG_INTERMEDIATE => Framing::Intermediate,
            TAG_PADDED => Framing::PaddedIntermediate,
            _ => return Err(TransportError::BadTag),
        };
        self.pos += 64;
        let start = self.pos;
        cipher.encrypt(&mut self.buf[start..]);
        self.cipher = Some(Box::new(cipher));
        self.kind = Some(TransportKind { framing, obfuscated: true });
        Ok(true)
    }

    /// Returns the next complete frame's payload, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        let r = self.next_frame_inner();
        if matches!(r, Ok(None)) {
            self.compact();
        }
        r
    }

    fn next_frame_inner(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        if self.kind.is_none() && !self.detect()? {
            return Ok(None);
        }
        let framing = self.kind.unwrap().framing;
        let a = self.avail();
        let (header, len) = match framing {
            Framing::Abridged => {
                if a.is_empty() {
                    return Ok(None);
                }
                // The top bit asks for a quick ack, which we do not send; mask it off.
                let b = a[0] & 0x7f;
                if b == 0x7f {
                    if a.len() < 4 {
                        return Ok(None);
                    }
                    (4, (u32::from_le_bytes([a[1], a[2], a[3], 0]) as usize) * 4)
                } else {
                    (1, b as usize * 4)
                }
            }
            Framing::Intermediate | Framing::PaddedIntermediate => {
                if a.len() < 4 {
                    return Ok(None);
                }
                (4, (u32::from_le_bytes(a[..4].try_into().unwrap()) & 0x7fff_ffff) as usize)
            }
            Framing::Full => {
                if a.len() < 4 {
                    return Ok(None);
                }
                let total = u32::from_le_bytes(a[..4].try_into().unwrap()) as usize;
                if total < 12 + 4 {
                    return Err(TransportError::BadLength(total));
                }
                (0, total)
            }
        };
        if len > self.max_frame {
            return Err(TransportError::Oversized(len));
        }
        if len == 0 {
            return Err(TransportError::BadLength(0));
        }
        if a.len() < header + len {
            return Ok(None);
        }
        let frame = &a[header..header + len];
        let payload = match framing {
            Framing::Full => {
                let seq = u32::from_le_bytes(frame[4..8].try_into().unwrap());
                let crc = u32::from_le_bytes(frame[len - 4..].try_into().unwrap());
                if crc32fast::hash(&frame[..len - 4]) != crc {
                    return Err(TransportError::BadCrc);
                }
                if seq != self.in_seq {
                    return Err(TransportError::BadSeq { got: seq, expected: self.in_seq });
                }
                let payload = frame[8..len - 4].to_vec();
                self.in_seq = self.in_seq.wrapping_add(1);
                payload
            }
            Framing::PaddedIntermediate => frame[..len - len % 4].to_vec(),
            _ => frame.to_vec(),
        };
        self.pos += header + len;
        Ok(Some(payload))
    }

    /// Frames (and, for obfuscated2, encrypts) one payload for the client.
    pub fn encode(&mut self, payload: &[u8], rng: &mut dyn Rng) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 16);
        self.encode_into(payload, rng, &mut out);
        out
    }

    /// [`ServerTransport::encode`], appending the frame to `out` (a connection's output
    /// buffer) instead of allocating one.
    pub fn encode_into(&mut self, payload: &[u8], rng: &mut dyn Rng, out: &mut Vec<u8>) {
        let framing = self.kind.map(|k| k.framing).unwrap_or(Framing::Full);
        let begin = out.len();
        out.reserve(payload.len() + 16);
        match framing {
            Framing::Full => {
                let total = (payload.len() + 12) as u32;
                out.extend_from_slice(&total.to_le_bytes());
                out.extend_from_slice(&self.out_seq.to_le_bytes());
                out.extend_from_slice(payload);
                let crc = crc32fast::hash(&out[begin..]);
                out.extend_from_slice(&crc.to_le_bytes());
                self.out_seq = self.out_seq.wrapping_add(1);
            }
            Framing::Abridged => {
                let words = payload.len() / 4;
                if words < 0x7f {
                    out.push(words as u8);
                } else {
                    out.push(0x7f);
                    out.extend_from_slice(&(words as u32).to_le_bytes()[..3]);
                }
                out.extend_from_slice(payload);
            }
            Framing::Intermediate => {
                out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                out.extend_from_slice(payload);
            }
            Framing::PaddedIntermediate => {
                let mut r = [0u8; 1];
                rng.fill(&mut r);
                let pad = (r[0] % 4) as usize;
                out.extend_from_slice(&((payload.len() + pad) as u32).to_le_bytes());
                out.extend_from_slice(payload);
                let start = out.len();
                out.resize(start + pad, 0);
                rng.fill(&mut out[start..]);
            }
        }
        if let Some(c) = self.cipher.as_mut() {
            c.decrypt(&mut out[begin..]);
        }
    }

    /// A transport error (-404, -429, -444): a 4-byte payload holding the negative code.
    pub fn encode_error(&mut self, code: i32, rng: &mut dyn Rng) -> Vec<u8> {
        self.encode(&code.to_le_bytes(), rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;

    fn full_frame(seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut t = ServerTransport::new(1 << 20);
        t.kind = Some(TransportKind { framing: Framing::Full, obfuscated: false });
        t.out_seq = seq;
        t.encode(payload, &mut SeededRng::new(0))
    }

    #[test]
    fn full_frame_known_answer() {
        // len 16 = 12 + 4, seq 0, payload, crc32 of the first 12 bytes.
        let f = full_frame(0, &[1, 2, 3, 4]);
        assert_eq!(&f[..12], &[16, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(u32::from_le_bytes(f[12..].try_into().unwrap()), crc32fast::hash(&f[..12]));
    }

    #[test]
    fn detects_each_plain_framing_and_splits_frames_across_reads() {
        let payload: Vec<u8> = (0..40u8).collect();
        let cases: Vec<(Vec<u8>, Framing)> = vec![
            ([&[0xef, 10][..], &payload].concat(), Framing::Abridged),
            ([&[0xee; 4][..], &40u32.to_le_bytes(), &payload].concat(), Framing::Intermediate),
            ([&[0xdd; 4][..], &42u32.to_le_bytes(), &payload, &[9, 9]].concat(), Framing::PaddedIntermediate),
            (full_frame(0, &payload), Framing::Full),
        ];
        for (bytes, framing) in cases {
            let mut t = ServerTransport::new(1 << 20);
            for b in &bytes[..bytes.len() - 1] {
                t.feed(&[*b]);
                assert_eq!(t.next_frame().unwrap(), None);
            }
            t.feed(&bytes[bytes.len() - 1..]);
            assert_eq!(t.next_frame().unwrap().as_deref(), Some(&payload[..]), "{framing:?}");
            assert_eq!(t.kind().unwrap().framing, framing);
        }
    }

    #[test]
    fn abridged_long_length_and_quick_ack_bit() {
        let payload = vec![7u8; 4 * 200];
        let mut bytes = vec![0xef, 0x7f, 200, 0, 0];
        bytes.extend_from_slice(&payload);
        bytes.extend_from_slice(&[0x80 | 1, 1, 2, 3, 4]); // quick-ack flag set
        let mut t = ServerTransport::new(1 << 20);
        t.feed(&bytes);
        assert_eq!(t.next_frame().unwrap().unwrap(), payload);
        assert_eq!(t.next_frame().unwrap().unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn obfuscated_round_trip_with_a_client_cipher() {
        let mut init = [0u8; 64];
        SeededRng::new(5).fill(&mut init);
        init[0] = 0x11;
        init[4..8].copy_from_slice(&[1, 2, 3, 4]);
        let mut client = ObfuscatedCipher::new(&init);
        let mut enc = init;
        enc[56..60].copy_from_slice(&TAG_INTERMEDIATE);
        client.encrypt(&mut enc);
        let mut wire = init[..56].to_vec();
        wire.extend_from_slice(&enc[56..64]);
        let mut frame = [&8u32.to_le_bytes()[..], &[1, 2, 3, 4, 5, 6, 7, 8]].concat();
        client.encrypt(&mut frame);
        wire.extend_from_slice(&frame);

        let mut t = ServerTransport::new(1 << 20);
        t.feed(&wire[..70]);
        t.feed(&wire[70..]);
        assert_eq!(t.next_frame().unwrap().unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(t.kind(), Some(TransportKind { framing: Framing::Intermediate, obfuscated: true }));
        let mut out = t.encode(&[9, 9, 9, 9], &mut SeededRng::new(0));
        client.decrypt(&mut out);
        assert_eq!(out, [&4u32.to_le_bytes()[..], &[9, 9, 9, 9]].concat());
    }

    #[test]
    fn hostile_frames_are_refused_before_allocation() {
        // oversized abridged and intermediate lengths
        let mut t = ServerTransport::new(1024);
        t.feed(&[0xef, 0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(t.next_frame(), Err(TransportError::Oversized(_))));
        let mut t = ServerTransport::new(1024);
        t.feed(&[0xee, 0xee, 0xee, 0xee, 0xff, 0xff, 0xff, 0x7f]);
        assert!(matches!(t.next_frame(), Err(TransportError::Oversized(_))));
        // bad CRC and bad sequence on TcpFull
        let mut f = full_frame(0, &[1, 2, 3, 4]);
        f[9] ^= 1;
        let mut t = ServerTransport::new(1024);
        t.feed(&f);
        assert_eq!(t.next_frame(), Err(TransportError::BadCrc));
        let mut t = ServerTransport::new(1024);
        t.feed(&full_frame(0, &[1, 2, 3, 4]));
        t.feed(&full_frame(5, &[1, 2, 3, 4]));
        assert!(t.next_frame().unwrap().is_some());
        assert_eq!(t.next_frame(), Err(TransportError::BadSeq { got: 5, expected: 1 }));
        // garbage that is no known framing: obfuscated2 with an unknown tag
        let mut t = ServerTransport::new(1024);
        t.feed(&[0x42; 64]);
        assert_eq!(t.next_frame(), Err(TransportError::BadTag));
        // zero-length abridged frame
        let mut t = ServerTransport::new(1024);
        t.feed(&[0xef, 0]);
        assert_eq!(t.next_frame(), Err(TransportError::BadLength(0)));
    }

    #[test]
    fn drained_buffers_are_released() {
        let mut t = ServerTransport::new(1 << 20);
        let payload = vec![3u8; 100_000];
        t.feed(&[0xee; 4]);
        t.feed(&(payload.len() as u32).to_le_bytes());
        t.feed(&payload[..50_000]);
        assert_eq!(t.next_frame().unwrap(), None);
        assert_eq!(t.buffered(), 50_004);
        t.feed(&payload[50_000..]);
        assert_eq!(t.next_frame().unwrap().unwrap().len(), 100_000);
        assert_eq!(t.next_frame().unwrap(), None);
        assert_eq!((t.buffered(), t.held()), (0, 0));
        // a large frame followed by a byte of the next: the large buffer is not kept
        let mut big = (payload.len() as u32).to_le_bytes().to_vec();
        big.extend_from_slice(&payload);
        big.push(7);
        t.feed(&big);
        assert_eq!(t.next_frame().unwrap().unwrap().len(), 100_000);
        assert_eq!(t.next_frame().unwrap(), None);
        assert_eq!(t.buffered(), 1);
        assert!(t.held() <= 64 * 1024, "{}", t.held());
        // while a frame arrives, memory stays within twice what arrived
        let mut t = ServerTransport::new(1 << 20);
        t.feed(&[0xee; 4]);
        t.feed(&(1u32 << 20).to_le_bytes());
        for _ in 0..8 {
            t.feed(&[1u8; 64 * 1024]);
            assert_eq!(t.next_frame().unwrap(), None);
            assert!(t.held() <= 2 * t.buffered() + 64 * 1024);
        }
    }

    #[test]
    fn error_code_frame() {
        let mut t = ServerTransport::new(1024);
        t.feed(&[0xef]);
        assert_eq!(t.next_frame().unwrap(), None);
        assert_eq!(t.encode_error(-404, &mut SeededRng::new(0)), vec![1, 0x6c, 0xfe, 0xff, 0xff]);
    }
}
