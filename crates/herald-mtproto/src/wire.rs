//! Hand-coded MTProto wire elements that `grammers-tl-types` does not generate
//! (`rpc_result`, `msg_container`, `gzip_packed`, plain and inner messages) and small TL
//! helpers. Every reader is bounded by its input; nothing trusts a length field.

use grammers_tl_types::{Identifiable, Serializable};
use std::io::{Read, Write};

pub const RPC_RESULT: u32 = 0xf35c6d01;
pub const RPC_ERROR: u32 = 0x2144ca19;
pub const MSG_CONTAINER: u32 = 0x73f1f8dc;
pub const GZIP_PACKED: u32 = 0x3072cfa1;
pub const MSGS_ACK: u32 = 0x62d6b459;
pub const PING: u32 = 0x7abe77ec;
pub const PING_DELAY_DISCONNECT: u32 = 0xf3427b8c;
pub const GET_FUTURE_SALTS: u32 = 0xb921bd04;
pub const DESTROY_SESSION: u32 = 0xe7512126;
pub const RPC_DROP_ANSWER: u32 = 0x58e4a740;
pub const RPC_ANSWER_UNKNOWN: u32 = 0x5e2ad36e;
pub const MSGS_STATE_REQ: u32 = 0xda69fb52;
pub const MSG_RESEND_REQ: u32 = 0x7d861a08;
pub const MSGS_STATE_INFO: u32 = 0x04deb57d;
pub const HTTP_WAIT: u32 = 0x9299359f;
pub const VECTOR: u32 = 0x1cb5c415;

/// At most this many messages in one container (security.md C11).
pub const MAX_CONTAINER_MESSAGES: usize = 1024;
/// At most this many ids in one ack / state / resend vector (security.md C11).
pub const MAX_ID_VECTOR: usize = 8192;
/// A `gzip_packed` may inflate to at most this many bytes (security.md §1.2).
pub const MAX_INFLATED: usize = 2 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated or malformed message")]
    Malformed,
    #[error("container or vector over its limit")]
    TooMany,
    #[error("inflated gzip_packed exceeds the limit")]
    TooLarge,
}

/// Serializes a bare `types::X` with its constructor id (boxed), which `types::X::serialize`
/// alone does not write.
pub fn boxed<T: Identifiable + Serializable>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    T::CONSTRUCTOR_ID.serialize(&mut out);
    value.serialize(&mut out);
    out
}

pub fn constructor_id(body: &[u8]) -> Option<u32> {
    body.get(..4).map(|b| u32::from_le_bytes(b.try_into().unwrap()))
}

/// A bounded little-endian reader.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(WireError::Malformed)?;
        self.pos = end;
        Ok(s)
    }
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn i32(&mut self) -> Result<i32, WireError> {
        Ok(self.u32()? as i32)
    }
    pub fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// TL `bytes`/`string`.
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let first = self.take(1)?[0];
        let (len, header) = if first == 254 {
            let b = self.take(3)?;
            (u32::from_le_bytes([b[0], b[1], b[2], 0]) as usize, 4)
        } else {
            (first as usize, 1)
        };
        let data = self.take(len)?;
        let pad = (4 - (header + len) % 4) % 4;
        self.take(pad)?;
        Ok(data)
    }
    /// A `Vector<long>` of at most [`MAX_ID_VECTOR`] entries.
    pub fn long_vector(&mut self) -> Result<Vec<i64>, WireError> {
        if self.u32()? != VECTOR {
            return Err(WireError::Malformed);
        }
        let n = self.u32()? as usize;
        if n > MAX_ID_VECTOR {
            return Err(WireError::TooMany);
        }
        (0..n).map(|_| self.i64()).collect()
    }
}

pub fn write_bytes(out: &mut Vec<u8>, data: &[u8]) {
    if data.len() < 254 {
        out.push(data.len() as u8);
        out.extend_from_slice(data);
        out.resize(out.len() + (4 - (1 + data.len()) % 4) % 4, 0);
    } else {
        out.push(254);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes()[..3]);
        out.extend_from_slice(data);
        out.resize(out.len() + (4 - data.len() % 4) % 4, 0);
    }
}

pub fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + result.len());
    out.extend_from_slice(&RPC_RESULT.to_le_bytes());
    out.extend_from_slice(&req_msg_id.to_le_bytes());
    out.extend_from_slice(result);
    out
}

pub fn rpc_error(code: i32, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&RPC_ERROR.to_le_bytes());
    out.extend_from_slice(&code.to_le_bytes());
    write_bytes(&mut out, message.as_bytes());
    out
}

/// Wraps `body` in `gzip_packed` if that makes it smaller.
pub fn gzip_if_smaller(body: Vec<u8>) -> Vec<u8> {
    if body.len() < 512 {
        return body;
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&body).expect("writing to a Vec");
    let packed = enc.finish().expect("writing to a Vec");
    if packed.len() + 8 >= body.len() {
        return body;
    }
    let mut out = Vec::with_capacity(packed.len() + 8);
    out.extend_from_slice(&GZIP_PACKED.to_le_bytes());
    write_bytes(&mut out, &packed);
    out
}

/// Inflates the `packed_data` of a `gzip_packed` (body after the constructor id), refusing
/// output over `limit` bytes without ever holding more than `limit + 1`. Both gzip and zlib
/// streams are accepted: TDLib packs its requests with a zlib header (`78 9c`), as Telegram's
/// servers accept.
pub fn gunzip_bounded(after_id: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let packed = Reader::new(after_id).bytes()?;
    let mut out = Vec::new();
    let read = if packed.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(packed).take(limit as u64 + 1).read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(packed).take(limit as u64 + 1).read_to_end(&mut out)
    };
    read.map_err(|_| WireError::Malformed)?;
    if out.len() > limit {
        return Err(WireError::TooLarge);
    }
    Ok(out)
}

/// One message inside a container, or at the top of an encrypted payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerMessage {
    pub msg_id: i64,
    pub seq_no: i32,
    pub body: Vec<u8>,
}

/// Parses a `msg_container` body (after its constructor id).
pub fn parse_container(after_id: &[u8]) -> Result<Vec<InnerMessage>, WireError> {
    let mut r = Reader::new(after_id);
    let n = r.u32()? as usize;
    if n > MAX_CONTAINER_MESSAGES {
        return Err(WireError::TooMany);
    }
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let msg_id = r.i64()?;
        let seq_no = r.i32()?;
        let len = r.u32()? as usize;
        if !len.is_multiple_of(4) {
            return Err(WireError::Malformed);
        }
        let body = r.take(len)?.to_vec();
        out.push(InnerMessage { msg_id, seq_no, body });
    }
    Ok(out)
}

pub fn container(messages: &[InnerMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MSG_CONTAINER.to_le_bytes());
    out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
    for m in messages {
        out.extend_from_slice(&m.msg_id.to_le_bytes());
        out.extend_from_slice(&m.seq_no.to_le_bytes());
        out.extend_from_slice(&(m.body.len() as u32).to_le_bytes());
        out.extend_from_slice(&m.body);
    }
    out
}

/// An unencrypted message: auth_key_id = 0 ‖ msg_id ‖ length ‖ body.
pub fn parse_plain(payload: &[u8]) -> Result<(i64, &[u8]), WireError> {
    let mut r = Reader::new(payload);
    if r.i64()? != 0 {
        return Err(WireError::Malformed);
    }
    let msg_id = r.i64()?;
    let len = r.u32()? as usize;
    let body = r.take(len)?;
    Ok((msg_id, body))
}

pub fn build_plain(msg_id: i64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + body.len());
    out.extend_from_slice(&0i64.to_le_bytes());
    out.extend_from_slice(&msg_id.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_streams_inflate_as_gzip_ones_do() {
        use std::io::Write;
        let body = b"the same request, packed two ways".repeat(20);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&body).unwrap();
        let mut after_id = Vec::new();
        write_bytes(&mut after_id, &z.finish().unwrap());
        assert_eq!(gunzip_bounded(&after_id, 1 << 20).unwrap(), body);
        let gz = gzip_if_smaller(body.clone());
        assert_eq!(gunzip_bounded(&gz[4..], 1 << 20).unwrap(), body);
        assert_eq!(gunzip_bounded(&after_id, 10), Err(WireError::TooLarge));
    }

    #[test]
    fn tl_bytes_known_answers() {
        let mut out = Vec::new();
        write_bytes(&mut out, b"abc");
        assert_eq!(out, [3, b'a', b'b', b'c']);
        let mut out = Vec::new();
        write_bytes(&mut out, &[7u8; 300]);
        assert_eq!(&out[..4], &[254, 44, 1, 0]);
        assert_eq!(out.len(), 4 + 300);
        assert_eq!(Reader::new(&out).bytes().unwrap(), &[7u8; 300][..]);
    }

    #[test]
    fn rpc_error_matches_grammers_encoding() {
        use grammers_tl_types::{types::RpcError, Serializable};
        let ours = rpc_error(400, "PEER_ID_INVALID");
        let theirs = boxed(&RpcError { error_code: 400, error_message: "PEER_ID_INVALID".into() });
        assert_eq!(ours, theirs);
        let _ = theirs.to_bytes();
    }

    #[test]
    fn gzip_round_trip_and_bomb_is_refused() {
        let body = vec![0u8; 100_000];
        let packed = gzip_if_smaller(body.clone());
        assert_eq!(constructor_id(&packed), Some(GZIP_PACKED));
        assert_eq!(gunzip_bounded(&packed[4..], MAX_INFLATED).unwrap(), body);
        // 1 KiB-ish of input that inflates to 64 MiB
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..64 {
            enc.write_all(&vec![0u8; 1 << 20]).unwrap();
        }
        let bomb = enc.finish().unwrap();
        let mut wrapped = Vec::new();
        write_bytes(&mut wrapped, &bomb);
        assert!(bomb.len() < 100_000);
        assert_eq!(gunzip_bounded(&wrapped, MAX_INFLATED), Err(WireError::TooLarge));
        assert_eq!(gunzip_bounded(&[3, 1, 2, 3], MAX_INFLATED), Err(WireError::Malformed));
    }

    #[test]
    fn containers_are_bounded() {
        let m = InnerMessage { msg_id: 4, seq_no: 1, body: vec![1, 2, 3, 4] };
        let c = container(&[m.clone(), m.clone()]);
        assert_eq!(parse_container(&c[4..]).unwrap(), vec![m.clone(), m]);
        let mut huge = Vec::new();
        huge.extend_from_slice(&(MAX_CONTAINER_MESSAGES as u32 + 1).to_le_bytes());
        assert_eq!(parse_container(&huge), Err(WireError::TooMany));
        // a length that runs past the end
        let mut bad = c[4..].to_vec();
        bad[16..20].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(parse_container(&bad), Err(WireError::Malformed));
    }

    #[test]
    fn plain_message_round_trip() {
        let p = build_plain(12345, &[1, 2, 3, 4]);
        assert_eq!(parse_plain(&p).unwrap(), (12345, &[1u8, 2, 3, 4][..]));
        assert!(parse_plain(&p[..p.len() - 1]).is_err());
    }
}
