//! The server half of Telegram's two-step-verification check: SRP-6a over Telegram's 2048-bit
//! prime with g = 3, hashed with SHA-256 (docs/client-compat.md §3.3, docs/security.md §1.6).
//!
//! The client turns the password into `x` with salted SHA-256 and PBKDF2 and gives the server
//! only the verifier `v = g^x mod p`. At each check the server sends `B = k·v + g^b`, the
//! client answers `A = g^a` and a proof `M1` of the shared key, and the server recomputes it:
//! the password and `x` never reach the server, and a recorded exchange does not reveal them.
//!
//! Safeguards: `A` must lie strictly between 1 and p − 1 (so `A ≡ 0` and the other trivial
//! values that would fix the shared key are refused), `u` must not be zero, and the proof is
//! compared in constant time. Single use of each `b` is the caller's job.

use crate::dh;
use crypto_bigint::modular::FixedMontyForm;
use crypto_bigint::U2048;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Numbers go on the wire and into hashes as 256 big-endian bytes.
pub type Num = [u8; 256];

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `x` as 256 big-endian bytes, when it has at most 256 significant bytes.
pub fn pad(x: &[u8]) -> Option<Num> {
    let x = crate::rsa::minimal_be(x);
    let mut out = [0u8; 256];
    (x.len() <= 256).then(|| {
        out[256 - x.len()..].copy_from_slice(x);
        out
    })
}

fn g_bytes() -> Num {
    let mut g = [0u8; 256];
    g[255] = dh::G as u8;
    g
}

fn form(x: &Num) -> FixedMontyForm<{ U2048::LIMBS }> {
    FixedMontyForm::new(&U2048::from_be_slice(x), &dh::params())
}

fn bytes(x: FixedMontyForm<{ U2048::LIMBS }>) -> Num {
    x.retrieve().to_be_bytes().as_ref().try_into().expect("2048 bits")
}

/// Whether `x` lies strictly between 1 and p − 1: what a verifier and a client's `A` must be.
pub fn in_range(x: &Num) -> bool {
    let x = U2048::from_be_slice(x);
    x > U2048::ONE && x < dh::prime().wrapping_sub(&U2048::ONE)
}

/// SRP's multiplier `k = H(p | g)`.
fn k() -> Num {
    let mut k = [0u8; 256];
    k[224..].copy_from_slice(&sha256(&[&dh::prime_bytes(), &g_bytes()]));
    k
}

/// The server's public value `B = (k·v + g^b) mod p` for the verifier `v` and a fresh
/// secret `b`.
pub fn server_public(v: &Num, b: &Num) -> Num {
    let g = form(&g_bytes());
    bytes(form(&k()).mul(&form(v)).add(&g.pow(&U2048::from_be_slice(b))))
}

/// Whether `m1` proves knowledge of the password behind `v`, for the exchange where the
/// server sent `big_b` (made from secret `b`) and the client answered `a`.
pub fn check(v: &Num, b: &Num, big_b: &Num, salt1: &[u8], salt2: &[u8], a: &[u8], m1: &[u8]) -> bool {
    let Some(a) = pad(a).filter(in_range) else { return false };
    let u = sha256(&[&a, big_b]);
    if u == [0; 32] {
        return false;
    }
    let mut u_num = [0u8; 256];
    u_num[224..].copy_from_slice(&u);
    // S = (A · v^u)^b mod p
    let s = form(&a).mul(&form(v).pow(&U2048::from_be_slice(&u_num))).pow(&U2048::from_be_slice(b));
    let key = sha256(&[&bytes(s)]);
    let (hp, hg) = (sha256(&[&dh::prime_bytes()]), sha256(&[&g_bytes()]));
    let mut mix = [0u8; 32];
    for (m, (x, y)) in mix.iter_mut().zip(hp.iter().zip(hg)) {
        *m = x ^ y;
    }
    let expected = sha256(&[&mix, &sha256(&[salt1]), &sha256(&[salt2]), &a, big_b, &key]);
    m1.len() == 32 && bool::from(expected.ct_eq(m1))
}

/// The client half, for tests and the bench client: `A` and `M1` for the verifier exponent
/// `x`, the client secret `a`, and the server's `big_b`.
#[cfg(any(test, feature = "client"))]
pub fn client_proof(x: &Num, a: &Num, big_b: &Num, salt1: &[u8], salt2: &[u8]) -> (Num, [u8; 32]) {
    let g = form(&g_bytes());
    let big_a = bytes(g.pow(&U2048::from_be_slice(a)));
    let u = sha256(&[&big_a, big_b]);
    let mut u_num = [0u8; 256];
    u_num[224..].copy_from_slice(&u);
    // S = (B − k·g^x)^(a + u·x) mod p; the exponent is kept below 2^2048 by the callers'
    // choice of small a and x.
    let kv = form(&k()).mul(&g.pow(&U2048::from_be_slice(x)));
    let base = form(big_b).sub(&kv);
    let exp = U2048::from_be_slice(a).wrapping_add(&U2048::from_be_slice(&u_num).wrapping_mul(&U2048::from_be_slice(x)));
    let key = sha256(&[&bytes(base.pow(&exp))]);
    let (hp, hg) = (sha256(&[&dh::prime_bytes()]), sha256(&[&g_bytes()]));
    let mut mix = [0u8; 32];
    for (m, (p, q)) in mix.iter_mut().zip(hp.iter().zip(hg)) {
        *m = p ^ q;
    }
    (big_a, sha256(&[&mix, &sha256(&[salt1]), &sha256(&[salt2]), &big_a, big_b, &key]))
}

/// The verifier `g^x mod p` a client would send for exponent `x`.
#[cfg(any(test, feature = "client"))]
pub fn verifier(x: &Num) -> Num {
    dh::pow_g(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u8, len: usize) -> Num {
        let mut n = [0u8; 256];
        for (i, b) in n[256 - len..].iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add((i as u8).wrapping_mul(7)) | 1;
        }
        n
    }

    #[test]
    fn a_right_proof_passes_and_any_change_fails() {
        let (x, a, b) = (small(1, 32), small(2, 128), small(3, 256));
        let v = verifier(&x);
        let big_b = server_public(&v, &b);
        let (big_a, m1) = client_proof(&x, &a, &big_b, b"salt1", b"salt2");
        assert!(check(&v, &b, &big_b, b"salt1", b"salt2", &big_a, &m1));
        // Leading zeros of A do not matter, the value does.
        let trimmed = crate::rsa::minimal_be(&big_a).to_vec();
        assert!(check(&v, &b, &big_b, b"salt1", b"salt2", &trimmed, &m1));
        // Another password, another salt, a flipped proof bit, another b: all refused.
        let other = verifier(&small(9, 32));
        assert!(!check(&other, &b, &server_public(&other, &b), b"salt1", b"salt2", &big_a, &m1));
        assert!(!check(&v, &b, &big_b, b"salt1", b"other", &big_a, &m1));
        let mut bad = m1;
        bad[0] ^= 1;
        assert!(!check(&v, &b, &big_b, b"salt1", b"salt2", &big_a, &bad));
        assert!(!check(&v, &small(4, 256), &big_b, b"salt1", b"salt2", &big_a, &m1));
        assert!(!check(&v, &b, &big_b, b"salt1", b"salt2", &big_a, &m1[..31]));
    }

    #[test]
    fn trivial_client_values_are_refused() {
        let (x, b) = (small(1, 32), small(3, 256));
        let v = verifier(&x);
        let big_b = server_public(&v, &b);
        let p = dh::prime_bytes();
        let mut p_minus_1 = p;
        p_minus_1[255] -= 1;
        let mut p_plus_1 = p;
        p_plus_1[255] += 1;
        // With A ≡ 0 or 1 (mod p), or A = p − 1, the shared key does not depend on the
        // password; a client offering them must fail whatever proof it sends.
        for a in [vec![0u8], vec![1u8], p.to_vec(), p_minus_1.to_vec(), p_plus_1.to_vec(), vec![0xff; 256], vec![1; 257]] {
            let padded = pad(&a).unwrap_or([0xff; 256]);
            // The proof an attacker could compute for S = 0 or S = 1 is refused like any other.
            for s in [[0u8; 256], {
                let mut one = [0u8; 256];
                one[255] = 1;
                one
            }] {
                let key = sha256(&[&s]);
                let (hp, hg) = (sha256(&[&p]), sha256(&[&g_bytes()]));
                let mix: Vec<u8> = hp.iter().zip(hg).map(|(x, y)| x ^ y).collect();
                let m1 = sha256(&[&mix, &sha256(&[b"s1"]), &sha256(&[b"s2"]), &padded, &big_b, &key]);
                assert!(!check(&v, &b, &big_b, b"s1", b"s2", &a, &m1), "A = {:02x?}…", &a[..a.len().min(4)]);
            }
        }
        assert!(in_range(&v));
        assert!(!in_range(&p_minus_1) && !in_range(&p) && !in_range(&[0u8; 256]));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Known answer made with Telethon 1.44.0's own client code (`telethon.password`):
    /// `compute_digest` for the verifier of "correct horse" with salts `herald-salt-one` /
    /// `herald-salt-two`, B computed in Python with big integers for b = bytes 01 02 … ff 00,
    /// and `compute_check` with its random `a` fixed to bytes (7i + 3) mod 256.
    #[test]
    fn telethons_proof_is_accepted() {
        let v: Num = hex(concat!(
            "0ad57741a8a69bd51231f3303eaa01c3d2beb8407b2f5108fefea9a1c4cdb67d2db8e478fa43f0fac087083a58a36924",
            "2b1ebb3a4480d0d0c158f5f514308900b6efb1e021ac782d754afd441025c472e8914c16791de7ca4ad7ddaa5a4e06a8",
            "dc81f27a09f436f0bfeb57b0d66e2b001dd0eee9212240a70cdb05dd438f3f57bc68535a44f0180267405455e3ce0d77",
            "9d7fae131d92766e24b7d05d13c48237a6c5a1affdfd53339fe7e6a81a4e2868585eb69e4b868626b106b1307eafea66",
            "a2fdc298671847a0a2a5b28d47c751266af2c01e192fd2307c14d1294359065b3331741c401b20b90df7ac3ea6b959db",
            "8fc0e30028a8c07de7f2c23e49b50743"
        ))
        .try_into()
        .unwrap();
        let big_b: Num = hex(concat!(
            "1eae8d149422857028533398fce8197dab8ce4f5a140016e38e7669277dc160efa0b0fbaf432bb2658fe63d70785e952",
            "8178d4f8c951b34bffe748658719f500365643f9670f127b988f0301c925f40967526a1135114e053694d9473a68fbca",
            "03c6ad1d648dddb46957b0a667ddd9e742ea748834b89455afb94ec5bb50251984e6a42ee8e606d1e8bd2001b3cfce7b",
            "37f297d79cbf1a8eda85fd5730af60269147b9da5324b524173f038bde19809873b6042976fdd3596b4895027be4d2e1",
            "6916584b025e1afc70cf87ead53e8a68cb82813434446d3fb9982635f21d790b6bb14411bb41594ae5e3db5568479324",
            "9d3322dbef821d30decf73a98dae6f6c"
        ))
        .try_into()
        .unwrap();
        let a = hex(concat!(
            "ad9320f2ddbd39d8f8f96bef56cafa4768fe1ba1c59d18516b733c7fe834982ec0ca288deae491f845bb4d39f0b9c7bd",
            "79649ee775903fae0428b073c750037744a763407097957ebc00c63ab1c31017c0df4c1677c8090130c24854c57f984e",
            "6cad87248715c437becbf817e9d6c05fe0d14d6b817beae992e490dc9a4f568e1b94c279559a9c7f93b3a81a4077d30a",
            "1160a64cc4f0717bb99cd2725273d383023e63c32b98b6d1cf70c5de0575841627f2b26ad8ba3f7361bb0ea6828e9309",
            "e41287285d7162345197ff2515f9c94515008aa752a256677edb98f565b7b860023fd14ff3fc9c3d9d99e8996d04c0a1",
            "487da0ee2870c90df4f87c55aac4dd31"
        ));
        let m1 = hex("0e486f946b139e8700faf8fd880f809b6c1e5641f3832ee26c0adca473d5f8de");
        let b: Num = std::array::from_fn(|i| (i as u8).wrapping_add(1));
        assert_eq!(&k()[224..], &hex("b9a87477bf585b87c1af9ea7d4850ff0edaa72f82e7afec3218091a79a5068b9")[..]);
        assert_eq!(server_public(&v, &b), big_b);
        assert!(check(&v, &b, &big_b, b"herald-salt-one", b"herald-salt-two", &a, &m1));
        assert!(!check(&v, &b, &big_b, b"herald-salt-one", b"herald-salt-twO", &a, &m1));
    }
}
