//! The server side of the key exchange: up to four plain-message bodies in a row (split on
//! a length prefix), each answered or failed, never a panic. The RSA key is made once.
#![no_main]
use herald_mtproto::handshake::Handshake;
use herald_mtproto::rng::SeededRng;
use herald_mtproto::rsa::RsaKey;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| RsaKey::generate(&mut SeededRng::new(7)))
}

fuzz_target!(|data: &[u8]| {
    let mut hs = Handshake::new(1);
    let mut rng = SeededRng::new(3);
    let mut rest = data;
    for _ in 0..4 {
        let Some((&len, tail)) = rest.split_first() else { return };
        let len = (len as usize * 4).min(tail.len());
        let (body, tail) = tail.split_at(len);
        let _ = hs.handle(body, 1_800_000_000, key(), &mut rng);
        rest = tail;
    }
});
