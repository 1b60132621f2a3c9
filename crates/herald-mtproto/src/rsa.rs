//! The server's RSA-2048 key: generation, PKCS#1 PEM storage, the Telegram fingerprint, and
//! raw private-key decryption for `req_DH_params`.
//!
//! Why not the `rsa` crate: RUSTSEC-2023-0071 (Marvin) is an open timing advisory on its
//! private-key operations. We use `crypto-bigint`, whose Montgomery exponentiation and
//! inversion are constant-time, and blind every decryption with a fresh random `r`
//! (c' = c·r^e, m = (c')^d · r^-1), so the exponentiation never sees the attacker's value.

use crate::crypto::sha1;
use crate::rng::{RandCore, Rng};
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{NonZero, Odd, U1024, U2048, U64};
use pkcs1::der::{Decode, Encode};
use pkcs1::UintRef;

pub const E: u64 = 65537;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#1 RSA PEM: {0}")]
    Pem(String),
    #[error("only 2048-bit keys with e=65537 are supported")]
    Unsupported,
}

/// A 2048-bit RSA private key.
#[derive(Clone)]
pub struct RsaKey {
    n: U2048,
    d: U2048,
    p: U1024,
    q: U1024,
    params: FixedMontyParams<{ U2048::LIMBS }>,
    crt: Crt,
}

/// What decryption by the Chinese remainder theorem needs: d mod (p-1), d mod (q-1) and
/// q^-1 mod p, with Montgomery parameters for p and q. Two 1024-bit exponentiations with
/// 1024-bit exponents cost about a quarter of one 2048-bit one.
#[derive(Clone)]
struct Crt {
    dp: U1024,
    dq: U1024,
    p_params: FixedMontyParams<{ U1024::LIMBS }>,
    q_params: FixedMontyParams<{ U1024::LIMBS }>,
    q_inv: FixedMontyForm<{ U1024::LIMBS }>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey(fingerprint={:016x})", self.fingerprint())
    }
}

fn to_bytes_be(x: &U2048) -> [u8; 256] {
    x.to_be_bytes().as_ref().try_into().unwrap()
}

fn from_bytes_be(b: &[u8]) -> Option<U2048> {
    if b.len() > 256 {
        return None;
    }
    let mut full = [0u8; 256];
    full[256 - b.len()..].copy_from_slice(b);
    Some(U2048::from_be_slice(&full))
}

/// The public half of a key, as a client holds it.
#[derive(Clone)]
pub struct RsaPublic {
    n: U2048,
    params: FixedMontyParams<{ U2048::LIMBS }>,
}

impl RsaPublic {
    /// From a PKCS#1 `RSAPublicKey` PEM (what `server.pub.pem` holds).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = pkcs1::der::pem::decode_vec(pem.as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "RSA PUBLIC KEY" {
            return Err(KeyError::Pem(format!("a {label} PEM, not an RSA PUBLIC KEY")));
        }
        let key: pkcs1::RsaPublicKey<UintRef> = pkcs1::RsaPublicKey::from_der(&der).map_err(|e| KeyError::Pem(e.to_string()))?;
        if minimal_be(key.public_exponent.as_bytes()) != minimal_be(&E.to_be_bytes()) {
            return Err(KeyError::Unsupported);
        }
        let n = from_bytes_be(minimal_be(key.modulus.as_bytes())).ok_or(KeyError::Unsupported)?;
        if n.bit_width() != 2048 {
            return Err(KeyError::Unsupported);
        }
        let params = FixedMontyParams::new(Option::from(Odd::new(n)).ok_or(KeyError::Unsupported)?);
        Ok(Self { n, params })
    }

    pub fn n_bytes(&self) -> [u8; 256] {
        to_bytes_be(&self.n)
    }

    /// Telegram's key fingerprint (see [`RsaKey::fingerprint`]).
    pub fn fingerprint(&self) -> i64 {
        fingerprint_of(&self.n_bytes())
    }

    /// RSA encryption m^e mod n.
    pub fn encrypt_raw(&self, m: &[u8; 256]) -> [u8; 256] {
        let m = U2048::from_be_slice(m);
        let c = pow_e(&FixedMontyForm::new(&m, &self.params));
        to_bytes_be(&c.retrieve())
    }
}

/// x^e with the public exponent, over its 17 bits only (at the modulus' full width the
/// ladder would run 2048 steps, as long as a private-key exponentiation).
fn pow_e(x: &FixedMontyForm<{ U2048::LIMBS }>) -> FixedMontyForm<{ U2048::LIMBS }> {
    x.pow_bounded_exp(&U64::from_u64(E), u64::BITS - E.leading_zeros())
}

fn fingerprint_of(n: &[u8; 256]) -> i64 {
    let mut buf = Vec::with_capacity(264);
    buf.extend_from_slice(&[0xfe, 0x00, 0x01, 0x00]);
    buf.extend_from_slice(minimal_be(n));
    buf.extend_from_slice(&[0x03, 0x01, 0x00, 0x01]);
    let h = sha1(&[&buf]);
    i64::from_le_bytes(h[12..20].try_into().unwrap())
}

/// Minimal big-endian bytes (no leading zeros), as TL `bytes` carry numbers.
pub fn minimal_be(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

impl RsaKey {
    /// Generates a fresh key from two random 1024-bit primes.
    pub fn generate(rng: &mut dyn Rng) -> Self {
        loop {
            let mut rc = RandCore(rng);
            let mut rc = crypto_bigint::rand_core::UnwrapErr(&mut rc);
            let p: U1024 = crypto_primes::random_prime(&mut rc, crypto_primes::Flavor::Any, 1024);
            let q: U1024 = crypto_primes::random_prime(&mut rc, crypto_primes::Flavor::Any, 1024);
            if p == q {
                continue;
            }
            if let Some(k) = Self::from_primes(p, q) {
                if k.n.bit_width() == 2048 {
                    return k;
                }
            }
        }
    }

    fn from_primes(p: U1024, q: U1024) -> Option<Self> {
        let n: U2048 = p.concatenating_mul(&q);
        let one = U1024::ONE;
        let phi: U2048 = p.wrapping_sub(&one).concatenating_mul(&q.wrapping_sub(&one));
        let e = U2048::from_u64(E);
        let d = Option::<U2048>::from(e.invert_mod(&NonZero::new(phi).into_option()?))?;
        let params = FixedMontyParams::new(Option::from(Odd::new(n))?);
        let dp = d.rem(&NonZero::new(p.wrapping_sub(&one)).into_option()?);
        let dq = d.rem(&NonZero::new(q.wrapping_sub(&one)).into_option()?);
        let p_params = FixedMontyParams::new(Option::from(Odd::new(p))?);
        let q_params = FixedMontyParams::new(Option::from(Odd::new(q))?);
        let q_mod_p = q.rem(&NonZero::new(p).into_option()?);
        let q_inv = Option::from(FixedMontyForm::new(&q_mod_p, &p_params).invert())?;
        Some(Self { n, d, p, q, params, crt: Crt { dp, dq, p_params, q_params, q_inv } })
    }

    pub fn n_bytes(&self) -> [u8; 256] {
        to_bytes_be(&self.n)
    }

    /// Telegram's key fingerprint: the low 64 bits of SHA1(TL bytes(n) ‖ TL bytes(e)),
    /// read as a little-endian signed integer.
    pub fn fingerprint(&self) -> i64 {
        fingerprint_of(&self.n_bytes())
    }

    /// The public half.
    pub fn public(&self) -> RsaPublic {
        RsaPublic { n: self.n, params: self.params }
    }

    /// Raw RSA decryption m = c^d mod n, blinded and constant-time. `None` when c ≥ n.
    pub fn decrypt_raw(&self, c: &[u8; 256], rng: &mut dyn Rng) -> Option<[u8; 256]> {
        let c = U2048::from_be_slice(c);
        if c >= self.n {
            return None;
        }
        let nz = NonZero::new(self.n).unwrap();
        let (r, r_inv) = loop {
            let mut rb = [0u8; 256];
            rng.fill(&mut rb);
            let r = U2048::from_be_slice(&rb).rem(&nz);
            let rm = FixedMontyForm::new(&r, &self.params);
            if let Some(inv) = Option::<FixedMontyForm<{ U2048::LIMBS }>>::from(rm.invert()) {
                break (rm, inv);
            }
        };
        let blinded = FixedMontyForm::new(&c, &self.params).mul(&pow_e(&r));
        let cb = blinded.retrieve();
        // Garner's recombination: m = m_q + q·((m_p − m_q)·q^-1 mod p), below n.
        let crt = &self.crt;
        let (p, q) = (NonZero::new(self.p).unwrap(), NonZero::new(self.q).unwrap());
        let m_p = FixedMontyForm::new(&cb.rem(&p), &crt.p_params).pow(&crt.dp);
        let m_q = FixedMontyForm::new(&cb.rem(&q), &crt.q_params).pow(&crt.dq).retrieve();
        let m_q_in_p = FixedMontyForm::new(&m_q.rem(&p), &crt.p_params);
        let h = m_p.sub(&m_q_in_p).mul(&crt.q_inv).retrieve();
        let mb: U2048 = h.concatenating_mul(&self.q).wrapping_add(&m_q.resize());
        // A fault in either half would make m^e differ from c and give away a factor of n (the
        // Bellcore attack); e is small, so checking costs 17 multiplications.
        let mb = FixedMontyForm::new(&mb, &self.params);
        if pow_e(&mb).retrieve() != cb {
            return None;
        }
        Some(to_bytes_be(&mb.mul(&r_inv).retrieve()))
    }

    /// RSA encryption with the public key (used by tests acting as a client).
    pub fn encrypt_raw(&self, m: &[u8; 256]) -> [u8; 256] {
        self.public().encrypt_raw(m)
    }

    /// PKCS#1 `RSAPublicKey` PEM (`-----BEGIN RSA PUBLIC KEY-----`), what Telethon loads.
    pub fn public_pem(&self) -> String {
        let n = self.n_bytes();
        let e = E.to_be_bytes();
        let key = pkcs1::RsaPublicKey { modulus: UintRef::new(minimal_be(&n)).unwrap(), public_exponent: UintRef::new(minimal_be(&e)).unwrap() };
        let der = key.to_der().expect("DER encoding of a public key");
        pkcs1::der::pem::encode_string("RSA PUBLIC KEY", pkcs1::LineEnding::LF, &der).unwrap()
    }

    /// PKCS#1 `RSAPrivateKey` PEM (`-----BEGIN RSA PRIVATE KEY-----`).
    pub fn private_pem(&self) -> String {
        let one = U1024::ONE;
        let d_p = self.d.rem(&NonZero::new(self.p.wrapping_sub(&one).resize()).unwrap());
        let d_q = self.d.rem(&NonZero::new(self.q.wrapping_sub(&one).resize()).unwrap());
        let q_inv: U1024 = Option::from(self.q.invert_mod(&NonZero::new(self.p).unwrap())).unwrap();
        let enc = |x: &U2048| to_bytes_be(x).to_vec();
        let nums: Vec<Vec<u8>> = vec![
            enc(&self.n),
            E.to_be_bytes().to_vec(),
            enc(&self.d),
            enc(&self.p.resize()),
            enc(&self.q.resize()),
            enc(&d_p),
            enc(&d_q),
            enc(&q_inv.resize()),
        ];
        let u = |i: usize| UintRef::new(minimal_be(&nums[i])).unwrap();
        let key = pkcs1::RsaPrivateKey {
            modulus: u(0),
            public_exponent: u(1),
            private_exponent: u(2),
            prime1: u(3),
            prime2: u(4),
            exponent1: u(5),
            exponent2: u(6),
            coefficient: u(7),
            other_prime_infos: None,
        };
        let der = key.to_der().expect("DER encoding of a private key");
        pkcs1::der::pem::encode_string("RSA PRIVATE KEY", pkcs1::LineEnding::LF, &der).unwrap()
    }

    pub fn from_private_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = pkcs1::der::pem::decode_vec(pem.as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "RSA PRIVATE KEY" {
            return Err(KeyError::Pem(format!("unexpected label {label}")));
        }
        let key = pkcs1::RsaPrivateKeyRef::from_der(&der).map_err(|e| KeyError::Pem(e.to_string()))?;
        if minimal_be(key.public_exponent.as_bytes()) != minimal_be(&E.to_be_bytes()) {
            return Err(KeyError::Unsupported);
        }
        let half = |b: &[u8]| -> Option<U1024> {
            let b = minimal_be(b);
            (b.len() <= 128).then(|| {
                let mut full = [0u8; 128];
                full[128 - b.len()..].copy_from_slice(b);
                U1024::from_be_slice(&full)
            })
        };
        let p = half(key.prime1.as_bytes()).ok_or(KeyError::Unsupported)?;
        let q = half(key.prime2.as_bytes()).ok_or(KeyError::Unsupported)?;
        let k = Self::from_primes(p, q).ok_or(KeyError::Unsupported)?;
        if from_bytes_be(minimal_be(key.modulus.as_bytes())) != Some(k.n) || k.n.bit_width() != 2048 {
            return Err(KeyError::Unsupported);
        }
        Ok(k)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::SeededRng;
    use std::sync::OnceLock;

    /// One generated key shared by the crate's tests (generation takes a moment).
    pub(crate) fn test_key() -> &'static RsaKey {
        static KEY: OnceLock<RsaKey> = OnceLock::new();
        KEY.get_or_init(|| RsaKey::generate(&mut SeededRng::new(42)))
    }

    #[test]
    fn the_public_pem_round_trips() {
        let k = RsaKey::generate(&mut crate::rng::SeededRng::new(9));
        let p = RsaPublic::from_pem(&k.public_pem()).unwrap();
        assert_eq!((p.fingerprint(), p.n_bytes()), (k.fingerprint(), k.n_bytes()));
        let m = [7u8; 256];
        let mut m = m;
        m[0] = 0;
        assert_eq!(k.decrypt_raw(&p.encrypt_raw(&m), &mut crate::rng::SeededRng::new(1)), Some(m));
        assert!(RsaPublic::from_pem(&k.private_pem()).is_err());
    }

    #[test]
    fn decrypt_inverts_encrypt() {
        let k = test_key();
        let mut m = [0u8; 256];
        m[1..].fill(0x5a);
        let c = k.encrypt_raw(&m);
        assert_ne!(c, m);
        assert_eq!(k.decrypt_raw(&c, &mut SeededRng::new(7)).unwrap(), m);
        // a ciphertext ≥ n is refused
        assert!(k.decrypt_raw(&[0xff; 256], &mut SeededRng::new(7)).is_none());
    }

    #[test]
    fn crt_decryption_agrees_with_the_plain_exponentiation() {
        let k = test_key();
        let mut rng = SeededRng::new(5);
        for _ in 0..8 {
            let mut c = [0u8; 256];
            rng.fill(&mut c);
            c[0] &= 0x7f; // below n, whose top bit is set
            let plain = FixedMontyForm::new(&U2048::from_be_slice(&c), &k.params).pow(&k.d).retrieve();
            assert_eq!(k.decrypt_raw(&c, &mut rng), Some(to_bytes_be(&plain)));
        }
        // the public exponent over 17 bits is the full-width one
        let x = FixedMontyForm::new(&U2048::from_u64(12345), &k.params);
        assert_eq!(pow_e(&x).retrieve(), x.pow(&U2048::from_u64(E)).retrieve());
    }

    #[test]
    fn pem_round_trip_and_shape() {
        let k = test_key();
        let pem = k.private_pem();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let k2 = RsaKey::from_private_pem(&pem).unwrap();
        assert_eq!(k2.n_bytes(), k.n_bytes());
        assert_eq!(k2.fingerprint(), k.fingerprint());
        assert!(k.public_pem().starts_with("-----BEGIN RSA PUBLIC KEY-----"));
    }

    /// Known answer: the fingerprint of Telegram's production key published in
    /// Telethon 1.44's `crypto/rsa.py` (an old key) is 0xc3b42b026ce86b21.
    #[test]
    fn fingerprint_matches_telegram_published_key() {
        let n_hex = "c150023e2f70db7985ded064759cfecf0af328e69a41daf4d6f01b538135a6f91f8f8b2a0ec9ba9720ce352efcf6c5680ffc424bd634864902de0b4bd6d49f4e580230e3ae97d95c8b19442b3c0a10d8f5633fecedd6926a7f6dab0ddb7d457f9ea81b8465fcd6fffeed114011df91c059caedaf97625f6c96ecc74725556934ef781d866b34f011fce4d835a090196e9a5f0e4449af7eb697ddb9076494ca5f81104a305b6dd27665722c46b60e5df680fb16b210607ef217652e60236c255f6a28315f4083a96791d7214bf64c1df4fd0db1944fb26a2a57031b32eee64ad15a8ba68885cde74a5bfc920f6abf59ba5c75506373e7130f9042da922179251f";
        let n: Vec<u8> = (0..n_hex.len()).step_by(2).map(|i| u8::from_str_radix(&n_hex[i..i + 2], 16).unwrap()).collect();
        let mut buf = vec![0xfe, 0x00, 0x01, 0x00];
        buf.extend_from_slice(&n);
        buf.extend_from_slice(&[0x03, 0x01, 0x00, 0x01]);
        let h = sha1(&[&buf]);
        let fp = i64::from_le_bytes(h[12..20].try_into().unwrap());
        assert_eq!(fp as u64, 0xc3b42b026ce86b21);
    }
}
