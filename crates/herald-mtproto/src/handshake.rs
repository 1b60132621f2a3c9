//! The server side of MTProto's DH key exchange, one instance per connection.
//!
//! `req_pq_multi` → `resPQ`, `req_DH_params` → `server_DH_params_ok`, `set_client_DH_params`
//! → `dh_gen_ok`. Both RSA schemes are accepted: RSA_PAD (grammers, TDLib, GramJS) and the
//! legacy `sha1 ‖ data ‖ random` one (Telethon, kurigram); client-compat.md §2.1.
//!
//! **Failures are sticky**: after any failed check the caller sends transport error -404 and
//! every later plain message on the connection also gets -404 (security.md §1.4), so a
//! probing client learns nothing about which step failed. A new `req_pq_multi` after a
//! *completed* exchange starts over (Telethon retries on the same connection).

use crate::crypto::{sha1, sha256, AuthKey};
use crate::dh;
use crate::rng::{RandCore, Rng};
use crate::rsa::{minimal_be, RsaKey};
use crate::wire::boxed;
use grammers_tl_types::{enums, functions, types, Cursor, Deserializable, Identifiable};
use subtle::ConstantTimeEq;

/// What the connection should do with a plain message.
#[derive(Debug)]
pub enum Step {
    /// Send this body as a plain message.
    Reply(Vec<u8>),
    /// The key exists now: store it (unless its id collides, see [`Handshake::collision`]),
    /// then send `reply`.
    Completed(Box<NewKey>),
    /// Send transport error -404; the handshake is dead for this connection.
    Fail,
    /// The client asked for another DC (`p_q_inner_data_dc`): send transport error -444.
    WrongDc,
}

#[derive(Debug)]
pub struct NewKey {
    pub key: AuthKey,
    /// The salt the protocol defines for the first session: new_nonce[0..8] ^ server_nonce[0..8].
    pub first_salt: i64,
    /// Some for a temporary (PFS) key.
    pub expires_in: Option<i32>,
    pub reply: Vec<u8>,
}

enum State {
    Idle,
    SentResPq { nonce: [u8; 16], server_nonce: [u8; 16], p: u64, q: u64 },
    SentDhParams { nonce: [u8; 16], server_nonce: [u8; 16], new_nonce: [u8; 32], a: Box<[u8; dh::SECRET_BYTES]>, expires_in: Option<i32>, retry_id: i64 },
    Failed,
}

pub struct Handshake {
    state: State,
    dc_id: i32,
}

/// A random prime of exactly `bits` bits.
fn random_prime(rng: &mut dyn Rng, bits: u32) -> u64 {
    let mut rc = RandCore(rng);
    let mut rc = crypto_bigint::rand_core::UnwrapErr(&mut rc);
    let p: crypto_bigint::U64 = crypto_primes::random_prime(&mut rc, crypto_primes::Flavor::Any, bits);
    u64::from_le_bytes(p.to_le_bytes().as_ref().try_into().unwrap())
}

/// Bits of the smaller and the larger factor of `pq`. Both below 2^32 (kurigram sends each
/// as 4 bytes) and their product below 2^63 (TDLib's limit). Unequal on purpose: Telethon's
/// Pollard-Brent factorization returns (1, pq) when the cycles modulo both primes close at
/// the same step, which with two 31-bit primes happened about once in 30 000 exchanges
/// (the -404 a test saw); with a 20-bit prime it finds the small factor long before the large
/// one (no failure in 105 000 tries) and in 0.7 ms of Python instead of about 27 ms. The
/// proof of work was never a defence (the key-exchange token bucket is); see
/// docs/client-compat.md §2.1.
const PQ_BITS: (u32, u32) = (20, 31);

fn be_num(b: &[u8]) -> Option<u64> {
    let b = minimal_be(b);
    (b.len() <= 8).then(|| b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
}

impl Handshake {
    pub fn new(dc_id: i32) -> Self {
        Self { state: State::Idle, dc_id }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    fn fail(&mut self) -> Step {
        self.state = State::Failed;
        Step::Fail
    }

    /// Handles one plain message body.
    pub fn handle(&mut self, body: &[u8], now_secs: i64, rsa: &RsaKey, rng: &mut dyn Rng) -> Step {
        if self.is_failed() {
            return Step::Fail;
        }
        let step = match crate::wire::constructor_id(body) {
            Some(functions::ReqPqMulti::CONSTRUCTOR_ID) => self.req_pq(&body[4..], rsa, rng),
            Some(functions::ReqDhParams::CONSTRUCTOR_ID) => self.req_dh(&body[4..], now_secs, rsa, rng),
            Some(functions::SetClientDhParams::CONSTRUCTOR_ID) => self.set_client_dh(&body[4..]),
            _ => None,
        };
        step.unwrap_or_else(|| self.fail())
    }

    fn req_pq(&mut self, body: &[u8], rsa: &RsaKey, rng: &mut dyn Rng) -> Option<Step> {
        // A new exchange may start when none is running or after one completed (Telethon
        // retries on the same connection), and may restart one that only got as far as resPQ.
        if !matches!(self.state, State::Idle | State::SentResPq { .. }) {
            return None;
        }
        let req = functions::ReqPqMulti::from_bytes(body).ok()?;
        let (p, q) = (random_prime(rng, PQ_BITS.0), random_prime(rng, PQ_BITS.1));
        let server_nonce: [u8; 16] = crate::rng::bytes(rng);
        let pq = (p * q).to_be_bytes();
        self.state = State::SentResPq { nonce: req.nonce, server_nonce, p, q };
        let res = types::ResPq { nonce: req.nonce, server_nonce, pq: minimal_be(&pq).to_vec(), server_public_key_fingerprints: vec![rsa.fingerprint()] };
        Some(Step::Reply(boxed(&res)))
    }

    fn req_dh(&mut self, body: &[u8], now_secs: i64, rsa: &RsaKey, rng: &mut dyn Rng) -> Option<Step> {
        let State::SentResPq { nonce, server_nonce, p, q } = self.state else { return None };
        let req = functions::ReqDhParams::from_bytes(body).ok()?;
        if req.nonce != nonce
            || req.server_nonce != server_nonce
            || be_num(&req.p)? != p
            || be_num(&req.q)? != q
            || req.public_key_fingerprint != rsa.fingerprint()
            || req.encrypted_data.len() > 256
        {
            return None;
        }
        let mut c = [0u8; 256];
        c[256 - req.encrypted_data.len()..].copy_from_slice(&req.encrypted_data);
        let m = rsa.decrypt_raw(&c, rng)?;
        // Both decoders always run to the end, so timing does not tell which scheme failed.
        let (pad, legacy) = (decode_rsa_pad(&m), decode_rsa_legacy(&m));
        let inner = pad.or(legacy)?;
        let (pq, ip, iq, inonce, isnonce, new_nonce, dc, expires_in) = match inner {
            enums::PQInnerData::Data(d) => (d.pq, d.p, d.q, d.nonce, d.server_nonce, d.new_nonce, None, None),
            enums::PQInnerData::Dc(d) => (d.pq, d.p, d.q, d.nonce, d.server_nonce, d.new_nonce, Some(d.dc), None),
            enums::PQInnerData::Temp(d) => (d.pq, d.p, d.q, d.nonce, d.server_nonce, d.new_nonce, None, Some(d.expires_in)),
            enums::PQInnerData::TempDc(d) => (d.pq, d.p, d.q, d.nonce, d.server_nonce, d.new_nonce, Some(d.dc), Some(d.expires_in)),
        };
        let ok = inonce == nonce && isnonce == server_nonce && be_num(&pq)? == p * q && be_num(&ip)? == p && be_num(&iq)? == q;
        if !ok {
            return None;
        }
        // Test DCs are numbered 10000 + id, media DCs negative; any of them names this DC.
        if dc.is_some_and(|d| d.unsigned_abs() != self.dc_id.unsigned_abs() && d.unsigned_abs() != 10000 + self.dc_id.unsigned_abs()) {
            self.state = State::Failed;
            return Some(Step::WrongDc);
        }
        let (a, g_a) = dh::new_secret(rng);
        let inner = types::ServerDhInnerData {
            nonce,
            server_nonce,
            g: dh::G as i32,
            dh_prime: dh::prime_bytes().to_vec(),
            g_a: g_a.to_vec(),
            server_time: now_secs as i32,
        };
        let inner = boxed(&inner);
        let mut answer = sha1(&[&inner]).to_vec();
        answer.extend_from_slice(&inner);
        let pad = (16 - answer.len() % 16) % 16;
        let start = answer.len();
        answer.resize(start + pad, 0);
        rng.fill(&mut answer[start..]);
        let (key, iv) = grammers_crypto::generate_key_data_from_nonce(&server_nonce, &new_nonce);
        crate::crypto::ige_encrypt(&mut answer, &key, &iv);
        self.state = State::SentDhParams { nonce, server_nonce, new_nonce, a: Box::new(a), expires_in, retry_id: 0 };
        let ok = types::ServerDhParamsOk { nonce, server_nonce, encrypted_answer: answer };
        Some(Step::Reply(boxed(&ok)))
    }

    fn set_client_dh(&mut self, body: &[u8]) -> Option<Step> {
        let State::SentDhParams { nonce, server_nonce, new_nonce, ref a, expires_in, retry_id } = self.state else {
            return None;
        };
        let req = functions::SetClientDhParams::from_bytes(body).ok()?;
        if req.nonce != nonce || req.server_nonce != server_nonce || req.encrypted_data.len() % 16 != 0 {
            return None;
        }
        let mut data = req.encrypted_data;
        if data.len() < 20 + 16 {
            return None;
        }
        let (key, iv) = grammers_crypto::generate_key_data_from_nonce(&server_nonce, &new_nonce);
        crate::crypto::ige_decrypt(&mut data, &key, &iv);
        let mut cur = Cursor::from_slice(&data[20..]);
        let enums::ClientDhInnerData::Data(inner) = enums::ClientDhInnerData::deserialize(&mut cur).ok()?;
        let consumed = cur.pos();
        if !bool::from(sha1(&[&data[20..20 + consumed]]).ct_eq(&data[..20]))
            || data.len() - 20 - consumed >= 16
            || inner.nonce != nonce
            || inner.server_nonce != server_nonce
            || inner.retry_id != retry_id
            || !dh::in_safe_range(&inner.g_b)
        {
            return None;
        }
        let g_b = minimal_be(&inner.g_b);
        let mut base = [0u8; 256];
        base[256 - g_b.len()..].copy_from_slice(g_b);
        let key = AuthKey::from_bytes(dh::pow(&base, a));
        let reply = boxed(&types::DhGenOk { nonce, server_nonce, new_nonce_hash1: key.new_nonce_hash(&new_nonce, 1) });
        let first_salt = i64::from_le_bytes(new_nonce[..8].try_into().unwrap()) ^ i64::from_le_bytes(server_nonce[..8].try_into().unwrap());
        // Keep the secret until the caller confirms the key id is free (see `collision`).
        self.state = State::SentDhParams { nonce, server_nonce, new_nonce, a: a.clone(), expires_in, retry_id };
        let done = NewKey { key, first_salt, expires_in, reply };
        Some(Step::Completed(Box::new(done)))
    }

    /// The caller stored the key: the exchange is over; a later `req_pq_multi` starts anew.
    pub fn finish(&mut self) {
        self.state = State::Idle;
    }

    /// The new key's id collides with a stored one: answer `dh_gen_retry`, and expect the
    /// client to retry with `retry_id` = the colliding key's aux_hash.
    pub fn collision(&mut self, key: &AuthKey) -> Vec<u8> {
        let State::SentDhParams { nonce, server_nonce, new_nonce, ref mut retry_id, .. } = self.state else {
            return Vec::new();
        };
        *retry_id = i64::from_le_bytes(key.aux_hash());
        boxed(&types::DhGenRetry { nonce, server_nonce, new_nonce_hash2: key.new_nonce_hash(&new_nonce, 2) })
    }
}

/// RSA_PAD: m = temp_key_xor ‖ AES-IGE(reverse(data_with_padding) ‖ SHA256(temp_key ‖ data_with_padding)).
fn decode_rsa_pad(m: &[u8; 256]) -> Option<enums::PQInnerData> {
    let h = sha256(&[&m[32..]]);
    let mut temp_key = [0u8; 32];
    for i in 0..32 {
        temp_key[i] = m[i] ^ h[i];
    }
    let mut body: [u8; 224] = m[32..].try_into().unwrap();
    crate::crypto::ige_decrypt(&mut body, &temp_key, &[0u8; 32]);
    let mut data: [u8; 192] = body[..192].try_into().unwrap();
    data.reverse();
    let ok = sha256(&[&temp_key, &data]).ct_eq(&body[192..]);
    if !bool::from(ok) {
        return None;
    }
    enums::PQInnerData::from_bytes(&data).ok()
}

/// Legacy: m = 0x00 ‖ SHA1(data) ‖ data ‖ random, 255 meaningful bytes.
fn decode_rsa_legacy(m: &[u8; 256]) -> Option<enums::PQInnerData> {
    let mut cur = Cursor::from_slice(&m[21..]);
    let inner = enums::PQInnerData::deserialize(&mut cur);
    let hash_ok = sha1(&[&m[21..21 + cur.pos()]]).ct_eq(&m[1..21]) & m[0].ct_eq(&0);
    if bool::from(hash_ok) {
        inner.ok()
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::SeededRng;
    use crate::rsa::tests::test_key;
    use grammers_tl_types::Serializable;

    /// Drives a complete exchange through the test client; returns both sides' keys.
    pub(crate) fn client_handshake(hs: &mut Handshake, rsa: &RsaKey, seed: u64, pad: bool) -> (AuthKey, NewKey) {
        let mut rng = SeededRng::new(seed ^ 0xabcdef);
        let mut client = crate::testing::ClientHandshake::new(rsa, seed, pad);
        let Step::Reply(r) = hs.handle(&client.req_pq(), 1_700_000_000, rsa, &mut rng) else { panic!("req_pq_multi") };
        let Step::Reply(r) = hs.handle(&client.req_dh(&r), 1_700_000_000, rsa, &mut rng) else { panic!("req_DH_params") };
        let Step::Completed(done) = hs.handle(&client.set_dh(&r), 1_700_000_000, rsa, &mut rng) else { panic!("set_client_DH_params") };
        let key = client.finish(&done.reply);
        // grammers' client-side nonce hash agrees with ours
        let gk = grammers_crypto::AuthKey::from_bytes(*key.bytes());
        assert_eq!(gk.to_bytes(), *done.key.bytes());
        hs.finish();
        (key, *done)
    }

    #[test]
    fn full_exchange_with_both_rsa_schemes() {
        let rsa = test_key();
        for pad in [false, true] {
            let mut hs = Handshake::new(1);
            let (client, server) = client_handshake(&mut hs, rsa, 11, pad);
            assert_eq!(client.bytes(), server.key.bytes());
            // a second exchange on the same connection works (Telethon's retry)
            let (c2, s2) = client_handshake(&mut hs, rsa, 12, pad);
            assert_eq!(c2.bytes(), s2.key.bytes());
            assert_ne!(c2.bytes(), client.bytes());
        }
    }

    #[test]
    fn failures_are_sticky() {
        let rsa = test_key();
        let mut rng = SeededRng::new(9);
        let mut hs = Handshake::new(1);
        // req_DH_params before req_pq_multi
        let bogus = functions::ReqDhParams { nonce: [0; 16], server_nonce: [0; 16], p: vec![], q: vec![], public_key_fingerprint: 0, encrypted_data: vec![] };
        assert!(matches!(hs.handle(&bogus.to_bytes(), 0, rsa, &mut rng), Step::Fail));
        // now even a correct req_pq_multi is refused
        let ok = functions::ReqPqMulti { nonce: [1; 16] }.to_bytes();
        assert!(matches!(hs.handle(&ok, 0, rsa, &mut rng), Step::Fail));
    }

    /// pq is a 20-bit prime times a 31-bit one: each below 2^32 (kurigram), the product below
    /// 2^63 (TDLib), the smaller first; and the factors a client finds are accepted.
    #[test]
    fn pq_has_one_small_and_one_large_factor() {
        let rsa = test_key();
        let mut rng = SeededRng::new(33);
        for i in 0..200u8 {
            let mut hs = Handshake::new(1);
            let Step::Reply(r) = hs.handle(&functions::ReqPqMulti { nonce: [i; 16] }.to_bytes(), 0, rsa, &mut rng) else { panic!() };
            let enums::ResPq::Pq(res) = enums::ResPq::from_bytes(&r).unwrap();
            let pq = be_num(&res.pq).unwrap();
            let (p, q) = grammers_crypto::factorize(pq);
            assert_eq!(p * q, pq);
            assert!((1 << 19..1 << 20).contains(&p), "p = {p}");
            assert!((1 << 30..1 << 31).contains(&q), "q = {q}");
            assert!(pq < 1 << 63);
            let State::SentResPq { p: sp, q: sq, .. } = hs.state else { panic!() };
            assert_eq!((sp, sq), (p, q));
        }
    }

    #[test]
    fn wrong_nonce_fingerprint_and_garbage_fail() {
        let rsa = test_key();
        let mut rng = SeededRng::new(10);
        for mutate in 0..4 {
            let mut hs = Handshake::new(1);
            let nonce = [5u8; 16];
            let Step::Reply(r) = hs.handle(&functions::ReqPqMulti { nonce }.to_bytes(), 0, rsa, &mut rng) else { panic!() };
            let enums::ResPq::Pq(res) = enums::ResPq::from_bytes(&r).unwrap();
            let (p, q) = grammers_crypto::factorize(be_num(&res.pq).unwrap());
            let mut req = functions::ReqDhParams {
                nonce,
                server_nonce: res.server_nonce,
                p: minimal_be(&p.to_be_bytes()).to_vec(),
                q: minimal_be(&q.to_be_bytes()).to_vec(),
                public_key_fingerprint: rsa.fingerprint(),
                encrypted_data: vec![0x11; 256],
            };
            match mutate {
                0 => req.nonce[0] ^= 1,
                1 => req.public_key_fingerprint ^= 1,
                2 => req.p = vec![3],
                _ => {} // RSA payload that decodes under neither scheme
            }
            assert!(matches!(hs.handle(&req.to_bytes(), 0, rsa, &mut rng), Step::Fail), "case {mutate}");
            assert!(hs.is_failed());
        }
        let mut hs = Handshake::new(1);
        assert!(matches!(hs.handle(&[1, 2, 3], 0, rsa, &mut rng), Step::Fail));
    }
    #[test]
    fn naming_another_dc_gets_444_and_this_dc_works() {
        let rsa = test_key();
        let mut rng = SeededRng::new(21);
        for (dc, ok) in [(2, true), (-2, true), (10002, true), (3, false)] {
            let mut hs = Handshake::new(2);
            let mut client = crate::testing::ClientHandshake::new(rsa, (100 + dc) as u64, false);
            client.dc = Some(dc);
            let Step::Reply(r) = hs.handle(&client.req_pq(), 0, rsa, &mut rng) else { panic!() };
            let step = hs.handle(&client.req_dh(&r), 0, rsa, &mut rng);
            assert_eq!(matches!(step, Step::Reply(_)), ok, "dc {dc}");
            assert_eq!(matches!(step, Step::WrongDc), !ok, "dc {dc}");
        }
    }
    #[test]
    fn key_id_collision_gets_dh_gen_retry_and_checks_retry_id() {
        let rsa = test_key();
        for wrong in [false, true] {
            let mut rng = SeededRng::new(31);
            let mut hs = Handshake::new(1);
            let mut client = crate::testing::ClientHandshake::new(rsa, 55, true);
            let Step::Reply(r) = hs.handle(&client.req_pq(), 0, rsa, &mut rng) else { panic!() };
            let Step::Reply(r) = hs.handle(&client.req_dh(&r), 0, rsa, &mut rng) else { panic!() };
            let Step::Completed(first) = hs.handle(&client.set_dh(&r), 0, rsa, &mut rng) else { panic!() };
            // the caller found the key id taken
            let retry = hs.collision(&first.key);
            let again = client.retry(&retry, wrong.then_some(0));
            match hs.handle(&again, 0, rsa, &mut rng) {
                Step::Completed(second) => {
                    assert!(!wrong);
                    assert_ne!(second.key.id(), first.key.id());
                    assert_eq!(client.finish(&second.reply).bytes(), second.key.bytes());
                }
                Step::Fail => assert!(wrong, "a correct retry_id must be accepted"),
                _ => panic!("unexpected step"),
            }
        }
    }
}
