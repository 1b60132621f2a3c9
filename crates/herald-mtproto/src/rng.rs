//! Randomness is injected so every protocol step can be replayed in tests.

/// A source of cryptographically secure random bytes.
pub trait Rng {
    fn fill(&mut self, buf: &mut [u8]);
}

/// `N` random bytes.
pub fn bytes<const N: usize>(rng: &mut dyn Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill(&mut out);
    out
}

/// The operating system's CSPRNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system RNG failed");
    }
}

/// The operating system's CSPRNG read a page at a time into a buffer per thread, for the
/// small draws made per message (padding, ids): one `getrandom` call serves hundreds of
/// messages instead of one each. Every byte is handed out once and wiped from the buffer as
/// it goes; draws larger than a quarter of the buffer go to the OS directly.
#[derive(Clone, Copy, Debug, Default)]
pub struct BufferedOsRng;

const POOL_BYTES: usize = 4096;

thread_local! {
    static POOL: std::cell::RefCell<(Box<[u8; POOL_BYTES]>, usize)> = std::cell::RefCell::new((Box::new([0u8; POOL_BYTES]), POOL_BYTES));
}

impl Rng for BufferedOsRng {
    fn fill(&mut self, buf: &mut [u8]) {
        if buf.len() > POOL_BYTES / 4 {
            return OsRng.fill(buf);
        }
        POOL.with(|p| {
            let (pool, pos) = &mut *p.borrow_mut();
            let mut out = buf;
            while !out.is_empty() {
                if *pos == POOL_BYTES {
                    OsRng.fill(&mut pool[..]);
                    *pos = 0;
                }
                let n = out.len().min(POOL_BYTES - *pos);
                let taken = &mut pool[*pos..*pos + n];
                out[..n].copy_from_slice(taken);
                taken.fill(0);
                *pos += n;
                out = &mut out[n..];
            }
        })
    }
}

/// A deterministic generator for tests: SHA-256 in counter mode over a seed.
/// Never use it outside tests and known-answer vectors.
#[derive(Clone, Debug)]
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Self { seed: s, counter: 0 }
    }
}

impl Rng for SeededRng {
    fn fill(&mut self, buf: &mut [u8]) {
        use sha2::{Digest, Sha256};
        for chunk in buf.chunks_mut(32) {
            let block = Sha256::new().chain_update(self.seed).chain_update(self.counter.to_le_bytes()).finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// Adapter so `crypto-primes` can draw from any [`Rng`].
pub(crate) struct RandCore<'a>(pub &'a mut dyn Rng);

impl crypto_bigint::rand_core::TryRng for RandCore<'_> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}
impl crypto_bigint::rand_core::TryCryptoRng for RandCore<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_os_rng_never_hands_out_a_byte_twice() {
        let mut rng = BufferedOsRng;
        // Draws that cross the buffer's refill boundary, of every small size.
        let mut seen = std::collections::HashSet::new();
        for n in (1..=64).cycle().take(600) {
            let mut b = vec![0u8; n];
            rng.fill(&mut b);
            if n >= 16 {
                assert!(seen.insert(b.clone()), "a 16+ byte draw repeated");
                assert!(b.iter().any(|&x| x != 0));
            }
        }
        // Large draws bypass the buffer.
        let (mut a, mut b) = ([0u8; 2048], [0u8; 2048]);
        rng.fill(&mut a);
        rng.fill(&mut b);
        assert_ne!(a, b);
    }
}
