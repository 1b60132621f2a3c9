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
