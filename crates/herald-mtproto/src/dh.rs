//! Diffie-Hellman over Telegram's standard 2048-bit safe prime with g = 3.
//!
//! The prime is Telegram's own because clients insist on it: kurigram compares
//! `dh_prime` with it byte for byte, and Telethon's 2FA has a fast path only for it.

use crate::rng::Rng;
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U2048, U256};

pub const G: u32 = 3;

/// Telegram's 2048-bit DH prime, big-endian.
pub const PRIME_HEX: &str = "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C3720FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F642477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B";

pub fn prime_bytes() -> [u8; 256] {
    let mut out = [0u8; 256];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&PRIME_HEX[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

pub(crate) fn prime() -> U2048 {
    U2048::from_be_slice(&prime_bytes())
}

pub(crate) fn params() -> FixedMontyParams<{ U2048::LIMBS }> {
    FixedMontyParams::new(Odd::new(prime()).unwrap())
}

/// Checks 1 < x < p-1 and the recommended 2^(2048-64) ≤ x ≤ p - 2^(2048-64).
pub fn in_safe_range(x_be: &[u8]) -> bool {
    let x_be = crate::rsa::minimal_be(x_be);
    if x_be.len() > 256 {
        return false;
    }
    let mut full = [0u8; 256];
    full[256 - x_be.len()..].copy_from_slice(x_be);
    let x = U2048::from_be_slice(&full);
    let low = U2048::ONE.shl_vartime(2048 - 64);
    let high = prime().wrapping_sub(&low);
    x >= low && x <= high
}

/// Bytes of a key-exchange secret exponent: 256 bits.
///
/// Telegram's guide says "a random 2048-bit number", but only this side ever sees its own
/// exponent, and a shorter one is as strong as the group: over a safe prime the best attack
/// on a t-bit exponent (Pollard's lambda) costs about 2^(t/2) steps, 2^128 here, above the
/// roughly 2^112 that the number field sieve needs against any 2048-bit exponent. OpenSSL
/// makes the same choice for its named 2048-bit groups (RFC 7919 §5.2 asks for at least 225
/// bits). It makes each exponentiation eight times cheaper (ARCHITECTURE.md, "Decisions").
pub const SECRET_BYTES: usize = 32;

fn exp<const L: usize>(base: &U2048, secret: &crypto_bigint::Uint<L>) -> [u8; 256] {
    let params = params();
    let b = FixedMontyForm::new(base, &params);
    b.pow(secret).retrieve().to_be_bytes().as_ref().try_into().unwrap()
}

/// g^secret mod p (constant-time in the secret), for a full-width secret (SRP's x).
pub fn pow_g(secret: &[u8; 256]) -> [u8; 256] {
    exp(&U2048::from_u64(G as u64), &U2048::from_be_slice(secret))
}

/// base^secret mod p, for the shared key g_b^a. `base` must already be range-checked.
pub fn pow(base: &[u8; 256], secret: &[u8; SECRET_BYTES]) -> [u8; 256] {
    exp(&U2048::from_be_slice(base), &U256::from_be_slice(secret))
}

/// A fresh secret exponent `a` (see [`SECRET_BYTES`]) whose g^a lies in the safe range.
pub fn new_secret(rng: &mut dyn Rng) -> ([u8; SECRET_BYTES], [u8; 256]) {
    let g = U2048::from_u64(G as u64);
    loop {
        let mut a = [0u8; SECRET_BYTES];
        rng.fill(&mut a);
        let g_a = exp(&g, &U256::from_be_slice(&a));
        if in_safe_range(&g_a) {
            return (a, g_a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prime_is_telegrams() {
        let p = prime_bytes();
        assert_eq!(&p[..4], &[0xc7, 0x1c, 0xae, 0xb9]);
        assert_eq!(&p[253..], &[0x2f, 0xcc, 0x5b]);
        assert_eq!(p[255] & 1, 1, "the prime is odd");
    }

    #[test]
    fn dh_agrees_and_range_is_checked() {
        let mut rng = crate::rng::SeededRng::new(3);
        let (a, g_a) = new_secret(&mut rng);
        let (b, g_b) = new_secret(&mut rng);
        assert_eq!(pow(&g_b, &a), pow(&g_a, &b));
        assert!(in_safe_range(&g_a));
        assert!(!in_safe_range(&[1]));
        assert!(!in_safe_range(&prime_bytes()));
        assert!(!in_safe_range(&[0xff; 257]));
        // known answers: 3^2 = 9 with either width of exponent
        let mut two = [0u8; 256];
        two[255] = 2;
        assert_eq!(pow_g(&two)[255], 9);
        let mut three = [0u8; 256];
        three[255] = 3;
        let mut short_two = [0u8; SECRET_BYTES];
        short_two[SECRET_BYTES - 1] = 2;
        assert_eq!(pow(&three, &short_two), pow_g(&two));
        // a short secret gives the same power as the same number at full width
        let mut wide = [0u8; 256];
        wide[256 - SECRET_BYTES..].copy_from_slice(&a);
        assert_eq!(pow_g(&wide), g_a);
    }
}
