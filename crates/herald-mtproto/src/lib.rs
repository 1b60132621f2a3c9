//! Herald's sans-IO MTProto 2.0 core.
//!
//! Bytes, the current time and randomness go in; bytes and events come out. Nothing here
//! touches a socket, a clock or a global RNG, so every step is testable with fixed inputs.
//!
//! - [`transport`]: TCP framings (full, abridged, intermediate, padded) and obfuscated2.
//! - [`handshake`]: the server side of the DH key exchange, both RSA schemes.
//! - [`crypto`]: MTProto 2.0 message encryption with the server's directions.
//! - [`session`]: the encrypted session state machine (msg_id/seq_no/salt checks,
//!   containers, gzip, service messages, outgoing message ids).
//! - [`rsa`], [`dh`]: the server key and Telegram's DH group.
//! - [`srp`]: the server half of the two-step-verification password check (SRP-6a).
//! - [`wire`]: hand-coded wire elements (rpc_result, msg_container, gzip_packed, ...).
//! - `testing` (feature `client`): the client side, for tests and `herald-bench`.

pub mod crypto;
pub mod dh;
pub mod handshake;
pub mod rng;
pub mod rsa;
pub mod salt;
pub mod session;
pub mod srp;
#[cfg(any(test, feature = "client"))]
pub mod testing;
pub mod transport;
pub mod wire;

pub use grammers_tl_types as tl;
