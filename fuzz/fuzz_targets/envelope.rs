//! The encrypted envelope and the bounded wire helpers: decrypting arbitrary ciphertext
//! under a fixed key must fail cleanly (and uniformly) or give a plaintext; plain-message,
//! container and gzip_packed parsing must never panic or inflate past the bound.
#![no_main]
use herald_mtproto::crypto::{decrypt_client_message, AuthKey};
use herald_mtproto::session::split_plaintext;
use herald_mtproto::wire::{self, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = AuthKey::from_bytes([0x42; 256]);
    if let Ok(plain) = decrypt_client_message(&key, data) {
        let _ = split_plaintext(&plain);
    }
    let _ = wire::parse_plain(data);
    let _ = wire::parse_container(data);
    if let Ok(inflated) = wire::gunzip_bounded(data, 1 << 20) {
        assert!(inflated.len() <= 1 << 20);
    }
    let _ = Reader::new(data).long_vector();
    let _ = wire::constructor_id(data);
});
