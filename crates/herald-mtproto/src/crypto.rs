//! MTProto 2.0 message encryption, server side.
//!
//! `grammers-crypto` is a client library: its `encrypt_data_v2` hard-codes x=0 and its
//! `decrypt_data_v2` x=8, the wrong way round for a server. So the key derivation is ours
//! (`calc_key`). AES-IGE is RustCrypto's `ige` over `aes` (`ige_encrypt`, `ige_decrypt`).

use crate::rng::Rng;
use aes::cipher::{array::Array, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// AES-256-IGE encryption in place, MTProto's convention: `iv` is the first "previous
/// ciphertext" block followed by the first "previous plaintext" block. `buf` must be a
/// whole number of 16-byte blocks (callers pad first).
///
/// Why not `grammers_crypto::aes::ige_encrypt`: it asks the cipher for one block at a
/// time, and the `aes` crate sets its backend up on every such call (on AVX-512 machines
/// it broadcasts all 15 round keys into vector registers per block), which made AES most
/// of the cost of a channel push. `ige` asks once per buffer.
pub fn ige_encrypt(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) {
    let (blocks, rest) = Array::slice_as_chunks_mut(buf);
    assert!(rest.is_empty(), "AES-IGE input must be a multiple of 16 bytes");
    ige::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_blocks(blocks);
}

/// AES-256-IGE decryption in place; the inverse of [`ige_encrypt`].
pub fn ige_decrypt(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) {
    let (blocks, rest) = Array::slice_as_chunks_mut(buf);
    assert!(rest.is_empty(), "AES-IGE input must be a multiple of 16 bytes");
    ige::Decryptor::<aes::Aes256>::new(key.into(), iv.into()).decrypt_blocks(blocks);
}

/// A 2048-bit authorization key with its derived identifiers.
#[derive(Clone)]
pub struct AuthKey {
    data: [u8; 256],
    id: i64,
    aux_hash: [u8; 8],
}

impl AuthKey {
    pub fn from_bytes(data: [u8; 256]) -> Self {
        let h = sha1(&[&data]);
        let id = i64::from_le_bytes(h[12..20].try_into().unwrap());
        let aux_hash = h[0..8].try_into().unwrap();
        Self { data, id, aux_hash }
    }
    pub fn bytes(&self) -> &[u8; 256] {
        &self.data
    }
    /// `auth_key_id`: the low 64 bits of SHA1(auth_key), as sent on the wire.
    pub fn id(&self) -> i64 {
        self.id
    }
    pub fn aux_hash(&self) -> [u8; 8] {
        self.aux_hash
    }
    /// `new_nonce_hash{1,2,3}` for `dh_gen_ok/retry/fail`.
    pub fn new_nonce_hash(&self, new_nonce: &[u8; 32], number: u8) -> [u8; 16] {
        let h = sha1(&[new_nonce, &[number], &self.aux_hash]);
        h[4..20].try_into().unwrap()
    }
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthKey({:016x})", self.id)
    }
}

/// Which side produced a message: x=0 client→server, x=8 server→client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToServer = 0,
    ServerToClient = 8,
}

/// MTProto 2.0 KDF: (aes_key, aes_iv) from auth_key and msg_key.
pub fn calc_key(key: &AuthKey, msg_key: &[u8; 16], dir: Direction) -> ([u8; 32], [u8; 32]) {
    let x = dir as usize;
    let a = sha256(&[msg_key, &key.data[x..x + 36]]);
    let b = sha256(&[&key.data[40 + x..76 + x], msg_key]);
    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..24].copy_from_slice(&b[8..24]);
    aes_key[24..].copy_from_slice(&a[24..32]);
    let mut aes_iv = [0u8; 32];
    aes_iv[..8].copy_from_slice(&b[..8]);
    aes_iv[8..24].copy_from_slice(&a[8..24]);
    aes_iv[24..].copy_from_slice(&b[24..32]);
    (aes_key, aes_iv)
}

/// msg_key = middle 128 bits of SHA256(auth_key[88+x..120+x] ‖ plaintext_with_padding).
pub fn msg_key(key: &AuthKey, padded_plaintext: &[u8], dir: Direction) -> [u8; 16] {
    let x = dir as usize;
    let h = sha256(&[&key.data[88 + x..120 + x], padded_plaintext]);
    h[8..24].try_into().unwrap()
}

/// The most padding [`encrypt_server_message_in_place`] adds: 27 bytes to reach a block
/// boundary with at least 12, plus up to three more blocks.
pub const MAX_SERVER_PADDING: usize = 27 + 48;

/// Encrypts a server→client plaintext (salt ‖ session_id ‖ msg_id ‖ seq_no ‖ len ‖ body):
/// pads it with 12..1024 random bytes to a multiple of 16 and returns
/// `auth_key_id ‖ msg_key ‖ AES-IGE(plaintext ‖ padding)`.
pub fn encrypt_server_message(key: &AuthKey, plaintext: &[u8], rng: &mut dyn Rng) -> Vec<u8> {
    let mut buf = Vec::with_capacity(24 + plaintext.len() + MAX_SERVER_PADDING);
    buf.extend_from_slice(&[0u8; 24]);
    buf.extend_from_slice(plaintext);
    encrypt_server_message_in_place(key, &mut buf, rng);
    buf
}

/// [`encrypt_server_message`] without a copy: `buf` is 24 bytes of room (their contents do
/// not matter) followed by the plaintext, and becomes the encrypted message.
pub fn encrypt_server_message_in_place(key: &AuthKey, buf: &mut Vec<u8>, rng: &mut dyn Rng) {
    assert!(buf.len() >= 24, "the buffer starts with 24 bytes of room for the key id and msg_key");
    let plaintext_len = buf.len() - 24;
    // 12..=27 bytes of padding reaching a multiple of 16, plus a random number of extra blocks.
    let mut pad = 16 - (plaintext_len % 16);
    if pad < 12 {
        pad += 16;
    }
    let mut extra = [0u8; 1];
    rng.fill(&mut extra);
    pad += 16 * (extra[0] as usize % 4);
    let start = buf.len();
    buf.resize(start + pad, 0);
    rng.fill(&mut buf[start..]);
    buf[..8].copy_from_slice(&key.id.to_le_bytes());
    let mk = msg_key(key, &buf[24..], Direction::ServerToClient);
    buf[8..24].copy_from_slice(&mk);
    let (k, iv) = calc_key(key, &mk, Direction::ServerToClient);
    ige_encrypt(&mut buf[24..], &k, &iv);
}

/// Why an encrypted message was refused before it could be trusted. All variants get the
/// same reaction on the wire (security.md C2/C3): the caller must not distinguish them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("encrypted message rejected")]
    Rejected,
}

/// Decrypts a client→server message body (everything after auth_key_id) and returns the
/// verified plaintext with its padding stripped: salt ‖ session_id ‖ msg_id ‖ seq_no ‖ len ‖ body.
///
/// The msg_key check is always computed, in constant time, even when the length is already
/// known to be bad, so every failure looks the same (security.md C2/C3).
pub fn decrypt_client_message(key: &AuthKey, data: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let shape_ok = data.len() >= 16 + 32 && (data.len() - 16).is_multiple_of(16);
    let mut mk = [0u8; 16];
    let mut buf;
    if data.len() >= 16 {
        mk.copy_from_slice(&data[..16]);
        buf = data[16..].to_vec();
    } else {
        buf = vec![0u8; 32];
    }
    let usable = buf.len() - buf.len() % 16;
    let (k, iv) = calc_key(key, &mk, Direction::ClientToServer);
    ige_decrypt(&mut buf[..usable], &k, &iv);
    let expected = msg_key(key, &buf, Direction::ClientToServer);
    let key_ok = expected.ct_eq(&mk);

    // Length and padding: inner length within the buffer, divisible by 4, padding 12..=1024.
    let inner_len = if buf.len() >= 32 { u32::from_le_bytes(buf[28..32].try_into().unwrap()) as usize } else { usize::MAX };
    let len_ok = inner_len % 4 == 0 && inner_len <= buf.len().saturating_sub(32) && (12..=1024).contains(&(buf.len() - 32 - inner_len.min(buf.len())));
    if bool::from(key_ok) & shape_ok & len_ok {
        buf.truncate(32 + inner_len);
        Ok(buf)
    } else {
        Err(DecryptError::Rejected)
    }
}

/// MTProto 1.0's key derivation (SHA-1), client-to-server direction (x = 0). Used only for
/// the inner message of `auth.bindTempAuthKey`, which the protocol still encrypts this way.
fn v1_key(key: &AuthKey, msg_key: &[u8; 16]) -> ([u8; 32], [u8; 32]) {
    let k = key.bytes();
    let a = sha1(&[msg_key, &k[0..32]]);
    let b = sha1(&[&k[32..48], msg_key, &k[48..64]]);
    let c = sha1(&[&k[64..96], msg_key]);
    let d = sha1(&[msg_key, &k[96..128]]);
    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..20].copy_from_slice(&b[8..20]);
    aes_key[20..].copy_from_slice(&c[4..16]);
    let mut iv = [0u8; 32];
    iv[..12].copy_from_slice(&a[8..20]);
    iv[12..20].copy_from_slice(&b[..8]);
    iv[20..24].copy_from_slice(&c[16..20]);
    iv[24..].copy_from_slice(&d[..8]);
    (aes_key, iv)
}

/// The inner message of `auth.bindTempAuthKey` (`encrypted_message`), opened with the
/// permanent key: `perm key id ‖ msg_key ‖ AES-IGE(salt ‖ session ‖ msg_id ‖ seq_no ‖ length ‖
/// data ‖ padding)` in MTProto 1.0, where `msg_key` is the middle 16 bytes of the SHA-1 of the
/// plaintext without its padding. Returns (msg_id, data) when the key id and `msg_key` match.
pub fn open_bind_message(key: &AuthKey, encrypted: &[u8]) -> Option<(i64, Vec<u8>)> {
    if encrypted.len() < 24 + 32 || !(encrypted.len() - 24).is_multiple_of(16) || encrypted[..8] != key.id().to_le_bytes() {
        return None;
    }
    let msg_key: [u8; 16] = encrypted[8..24].try_into().ok()?;
    let mut plain = encrypted[24..].to_vec();
    let (k, iv) = v1_key(key, &msg_key);
    ige_decrypt(&mut plain, &k, &iv);
    let len = u32::from_le_bytes(plain[28..32].try_into().ok()?) as usize;
    if !len.is_multiple_of(4) || len > plain.len() - 32 || plain.len() - 32 - len >= 16 {
        return None;
    }
    let hash = sha1(&[&plain[..32 + len]]);
    if !bool::from(hash[4..20].ct_eq(&msg_key)) {
        return None;
    }
    let msg_id = i64::from_le_bytes(plain[16..24].try_into().ok()?);
    Some((msg_id, plain[32..32 + len].to_vec()))
}

/// The client side of [`open_bind_message`], for tests: `data` sent as message `msg_id`.
#[cfg(any(test, feature = "client"))]
pub fn seal_bind_message(key: &AuthKey, msg_id: i64, data: &[u8], rng: &mut dyn Rng) -> Vec<u8> {
    let mut plain = vec![0u8; 16];
    rng.fill(&mut plain);
    plain.extend_from_slice(&msg_id.to_le_bytes());
    plain.extend_from_slice(&0i32.to_le_bytes());
    plain.extend_from_slice(&(data.len() as u32).to_le_bytes());
    plain.extend_from_slice(data);
    let hash = sha1(&[&plain]);
    let msg_key: [u8; 16] = hash[4..20].try_into().expect("16 bytes");
    let pad = (16 - plain.len() % 16) % 16;
    let mut padding = vec![0u8; pad];
    rng.fill(&mut padding);
    plain.extend_from_slice(&padding);
    let (k, iv) = v1_key(key, &msg_key);
    ige_encrypt(&mut plain, &k, &iv);
    let mut out = key.id().to_le_bytes().to_vec();
    out.extend_from_slice(&msg_key);
    out.extend_from_slice(&plain);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;

    #[test]
    fn bind_messages_open_only_with_their_key() {
        let mut rng = SeededRng::new(11);
        let mut bytes = [0u8; 256];
        rng.fill(&mut bytes);
        let key = AuthKey::from_bytes(bytes);
        let data = b"bind_auth_key_inner of 36 bytes....!".to_vec();
        let sealed = seal_bind_message(&key, 0x1234_5678_9abc_def0, &data, &mut rng);
        assert_eq!(open_bind_message(&key, &sealed), Some((0x1234_5678_9abc_def0, data.clone())));
        // A flipped ciphertext bit, a wrong key, a truncated message: refused.
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(open_bind_message(&key, &bad), None);
        let mut other = bytes;
        other[0] ^= 1;
        assert_eq!(open_bind_message(&AuthKey::from_bytes(other), &sealed), None);
        assert_eq!(open_bind_message(&key, &sealed[..40]), None);
    }

    /// Known answer for MTProto 1.0's key derivation (the formula of Telegram's MTProto 1.0
    /// description), computed in Python with hashlib from auth_key = bytes(range(256)) and
    /// msg_key = bytes(range(16)).
    #[test]
    fn v1_key_derivation_known_answer() {
        let key = AuthKey::from_bytes(std::array::from_fn(|i| i as u8));
        let msg_key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let (k, iv) = v1_key(&key, &msg_key);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&k), "17d7295ca9213d1ab656acdb1ad48b2ea7f3a8f7095098d5508b900bbd5fccfc");
        assert_eq!(hex(&iv), "2d7d16a65a84108e9805656caa474501cc580aa2edc33abfd0bfad785464d1c6");
    }

    fn key() -> AuthKey {
        let mut d = [0u8; 256];
        for (i, b) in d.iter_mut().enumerate() {
            *b = i as u8;
        }
        AuthKey::from_bytes(d)
    }

    /// Known answer: with an all-zero key, IV and plaintext, IGE reduces to chained AES:
    /// c1 = AES(0) and c2 = AES(c1) ⊕ p1 = AES(c1) (values checked with OpenSSL's AES-256-ECB).
    #[test]
    fn ige_known_answer_and_same_bytes_as_grammers() {
        let mut buf = [0u8; 32];
        ige_encrypt(&mut buf, &[0; 32], &[0; 32]);
        assert_eq!(buf.to_vec(), hex("dc95c078a2408989ad48a2149284208708c374848c228233c2b34f332bd2e9d3"));
        ige_decrypt(&mut buf, &[0; 32], &[0; 32]);
        assert_eq!(buf, [0u8; 32]);

        // And the same bytes as grammers-crypto's block-at-a-time version, for several sizes.
        let mut rng = SeededRng::new(3);
        for blocks in [1usize, 2, 7, 64, 300] {
            let (mut key, mut iv) = ([0u8; 32], [0u8; 32]);
            rng.fill(&mut key);
            rng.fill(&mut iv);
            let mut plain = vec![0u8; blocks * 16];
            rng.fill(&mut plain);
            let mut ours = plain.clone();
            ige_encrypt(&mut ours, &key, &iv);
            let mut theirs = plain.clone();
            grammers_crypto::aes::ige_encrypt(&mut theirs, &key, &iv);
            assert_eq!(ours, theirs, "{blocks} blocks");
            ige_decrypt(&mut ours, &key, &iv);
            assert_eq!(ours, plain);
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Encrypting in place gives the bytes the copying version gives (same random bytes).
    #[test]
    fn in_place_encryption_matches_the_copying_version() {
        let k = key();
        for len in [32usize, 36, 44, 500] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let copied = encrypt_server_message(&k, &plain, &mut SeededRng::new(len as u64));
            let mut buf = vec![0xAA; 24];
            buf.extend_from_slice(&plain);
            encrypt_server_message_in_place(&k, &mut buf, &mut SeededRng::new(len as u64));
            assert_eq!(buf, copied);
            assert!(copied.len() - 24 - len >= 12 && copied.len() - 24 - len <= MAX_SERVER_PADDING);
        }
    }

    #[test]
    fn auth_key_id_is_low_64_bits_of_sha1() {
        let k = key();
        let h = sha1(&[k.bytes()]);
        assert_eq!(k.id().to_le_bytes(), h[12..20]);
        assert_eq!(k.aux_hash(), h[0..8]);
    }

    /// The KDF is symmetric with the client's: we cross-check against grammers-crypto's
    /// client-side encrypt (x=0), which our server decrypt must accept.
    #[test]
    fn decrypts_what_a_grammers_client_encrypts() {
        let k = key();
        let gk = grammers_crypto::AuthKey::from_bytes(*k.bytes());
        let mut plain = Vec::new();
        plain.extend_from_slice(&7i64.to_le_bytes()); // salt
        plain.extend_from_slice(&9i64.to_le_bytes()); // session
        plain.extend_from_slice(&(1u64 << 32 | 4).to_le_bytes());
        plain.extend_from_slice(&1i32.to_le_bytes());
        plain.extend_from_slice(&8i32.to_le_bytes());
        plain.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut buf = grammers_crypto::DequeBuffer::with_capacity(plain.len(), 0);
        buf.extend(plain.iter().copied());
        grammers_crypto::encrypt_data_v2(&mut buf, &gk);
        let wire: Vec<u8> = buf.as_ref().to_vec();
        assert_eq!(&wire[..8], &k.id().to_le_bytes());
        let got = decrypt_client_message(&k, &wire[8..]).unwrap();
        assert_eq!(got, plain);
    }

    /// ...and grammers' client decrypt (x=8) accepts what the server encrypts.
    #[test]
    fn grammers_client_decrypts_what_we_encrypt() {
        let k = key();
        let gk = grammers_crypto::AuthKey::from_bytes(*k.bytes());
        let plain: Vec<u8> = (0..40u8).collect();
        let mut rng = SeededRng::new(1);
        let mut wire = encrypt_server_message(&k, &plain, &mut rng);
        let pad = wire.len() - 24 - plain.len();
        assert!((12..=1024).contains(&pad) && (wire.len() - 24).is_multiple_of(16));
        let got = grammers_crypto::decrypt_data_v2(&mut wire, &gk).unwrap();
        assert_eq!(&got[..plain.len()], &plain[..]);
    }

    #[test]
    fn every_tampering_gets_the_same_rejection() {
        let k = key();
        let mut plain = [0u8; 32];
        plain[28..32].copy_from_slice(&0u32.to_le_bytes());
        let gk = grammers_crypto::AuthKey::from_bytes(*k.bytes());
        let mut buf = grammers_crypto::DequeBuffer::with_capacity(plain.len(), 0);
        buf.extend(plain.iter().copied());
        grammers_crypto::encrypt_data_v2(&mut buf, &gk);
        let wire: Vec<u8> = buf.as_ref()[8..].to_vec();
        assert!(decrypt_client_message(&k, &wire).is_ok());
        // flipped msg_key, flipped ciphertext, truncated, too short, empty
        let mut a = wire.clone();
        a[0] ^= 1;
        let mut b = wire.clone();
        b[40] ^= 1;
        let c = wire[..wire.len() - 16].to_vec();
        for bad in [a, b, c, vec![0u8; 10], vec![]] {
            assert_eq!(decrypt_client_message(&k, &bad), Err(DecryptError::Rejected));
        }
    }
}
