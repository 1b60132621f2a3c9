//! Server salts, derived rather than stored.
//!
//! salt(key, period) = first 8 bytes of SHA256(secret ‖ auth_key_id ‖ period), with periods of
//! 30 minutes. The current and the previous period's salts are accepted, so a salt lives for
//! 30 to 60 minutes (security.md C9). Being a pure function of a server secret, every
//! gateway of a DC agrees on it without sharing state.

use crate::crypto::sha256;

pub const PERIOD_SECS: i64 = 1800;

#[derive(Clone)]
pub struct Salts {
    secret: [u8; 32],
}

impl Salts {
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    pub fn for_period(&self, auth_key_id: i64, period: i64) -> i64 {
        let h = sha256(&[&self.secret, &auth_key_id.to_le_bytes(), &period.to_le_bytes()]);
        i64::from_le_bytes(h[..8].try_into().unwrap())
    }

    pub fn current(&self, auth_key_id: i64, now_secs: i64) -> i64 {
        self.for_period(auth_key_id, now_secs.div_euclid(PERIOD_SECS))
    }

    pub fn is_valid(&self, auth_key_id: i64, salt: i64, now_secs: i64) -> bool {
        let p = now_secs.div_euclid(PERIOD_SECS);
        salt == self.for_period(auth_key_id, p) || salt == self.for_period(auth_key_id, p - 1)
    }

    /// `get_future_salts`: up to `num` (capped at 64) salts starting with the current one.
    pub fn future(&self, auth_key_id: i64, now_secs: i64, num: i32) -> Vec<(i32, i32, i64)> {
        let p = now_secs.div_euclid(PERIOD_SECS);
        (0..num.clamp(1, 64) as i64)
            .map(|i| {
                let since = (p + i) * PERIOD_SECS;
                (since as i32, (since + 2 * PERIOD_SECS) as i32, self.for_period(auth_key_id, p + i))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_rotate_and_overlap() {
        let s = Salts::new([7; 32]);
        let t = 1_800_000_000;
        let cur = s.current(1, t);
        assert!(s.is_valid(1, cur, t));
        assert!(s.is_valid(1, cur, t + PERIOD_SECS)); // previous period still accepted
        assert!(!s.is_valid(1, cur, t + 2 * PERIOD_SECS + PERIOD_SECS));
        assert!(!s.is_valid(2, cur, t)); // bound to the key
        assert!(!s.is_valid(1, 0, t));
        assert_eq!(s.future(1, t, 3)[0].2, cur);
        assert_eq!(s.future(1, t, 1000).len(), 64);
    }
}
