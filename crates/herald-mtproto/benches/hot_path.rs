//! Hot-path benchmark: `cargo bench -p herald-mtproto`.
//!
//! Times, per operation, the steps every message takes: client-message decryption (with the
//! msg_key check), the session's checks, packing and encrypting a reply, and transport
//! framing; and the server's side of a whole key exchange (RSA decryption, two
//! Diffie-Hellman exponentiations, the nonces and hashes). Plain `std::time` so it needs no extra dependency; for a stable number across
//! runs use `valgrind --tool=callgrind` on the bench binary (instruction counts).

use herald_mtproto::crypto::{decrypt_client_message, encrypt_server_message, AuthKey};
use herald_mtproto::handshake::{Handshake, Step};
use herald_mtproto::rng::SeededRng;
use herald_mtproto::rsa::RsaKey;
use herald_mtproto::salt::Salts;
use herald_mtproto::session::{split_plaintext, Now, OutMessage, Output, Session};
use herald_mtproto::testing::{ClientHandshake, ClientSession};
use herald_mtproto::transport::ServerTransport;
use std::hint::black_box;
use std::time::Instant;

fn bench(name: &str, iters: u32, mut f: impl FnMut(u32)) {
    for i in 0..iters / 10 {
        f(i); // warm-up
    }
    let start = Instant::now();
    for i in 0..iters {
        f(i);
    }
    let per = start.elapsed().as_nanos() as f64 / iters as f64;
    println!("{name:<40} {per:>10.0} ns/op");
}

fn main() {
    let key = AuthKey::from_bytes([7u8; 256]);
    let salts = Salts::new([1; 32]);
    let now_ms = 1_800_000_000_000i64;
    let now = Now { unix_ms: now_ms };
    let mut client = ClientSession::new(key.clone(), 5);
    client.salt = salts.current(key.id(), now.secs());
    let body = vec![0x42u8; 1024];
    let wire: Vec<u8> = client.encrypt(&body, now_ms).1;

    bench("decrypt 1 KiB client message", 20_000, |_| {
        black_box(decrypt_client_message(&key, black_box(&wire[8..])).unwrap());
    });

    let mut session = Session::new(5, key.id(), 1);
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    for i in 0..20_000i64 {
        msgs.push(client.encrypt_raw(client.salt, ((now.secs()) << 32) | ((i + 1) * 4), (2 * i + 1) as i32, &body));
    }
    let plains: Vec<Vec<u8>> = msgs.iter().map(|m| decrypt_client_message(&key, &m[8..]).unwrap()).collect();
    bench("session checks per message", 20_000, |i| {
        let (h, b) = split_plaintext(&plains[i as usize % plains.len()]).unwrap();
        let mut out = Output::default();
        session.receive(h, b, now, &salts, &mut out);
        black_box(out);
    });

    let mut rng = SeededRng::new(1);
    bench("pack + encrypt 1 KiB reply", 20_000, |_| {
        let plain = session.pack(vec![OutMessage::response(body.clone())], now, &salts);
        black_box(encrypt_server_message(&key, &plain, &mut rng));
    });

    let mut t = ServerTransport::new(2 << 20);
    t.feed(&[0xee; 4]);
    let mut frame = (wire.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&wire);
    bench("intermediate frame decode", 200_000, |_| {
        t.feed(&frame);
        black_box(t.next_frame().unwrap().unwrap());
    });

    // The server's three steps of a key exchange. The client's messages are made outside the
    // timed part (its own exponentiations and factoring are the client's cost).
    let rsa = RsaKey::generate(&mut SeededRng::new(42));
    let mut clients: Vec<(Vec<u8>, ClientHandshake)> = (0..60)
        .map(|i| {
            let c = ClientHandshake::new(&rsa, 1000 + i, true);
            (c.req_pq(), c)
        })
        .collect();
    let mut server_ns = [0u128; 3];
    let mut rng = SeededRng::new(3);
    for (i, (req_pq, client)) in clients.iter_mut().enumerate() {
        let mut hs = Handshake::new(1);
        let t = Instant::now();
        let Step::Reply(res_pq) = hs.handle(req_pq, 1_700_000_000, &rsa, &mut rng) else { panic!("req_pq_multi") };
        server_ns[0] += t.elapsed().as_nanos();
        let req_dh = client.req_dh(&res_pq);
        let t = Instant::now();
        let Step::Reply(dh_params) = hs.handle(&req_dh, 1_700_000_000, &rsa, &mut rng) else { panic!("req_DH_params") };
        server_ns[1] += t.elapsed().as_nanos();
        let set_dh = client.set_dh(&dh_params);
        let t = Instant::now();
        let Step::Completed(done) = hs.handle(&set_dh, 1_700_000_000, &rsa, &mut rng) else { panic!("set_client_DH_params") };
        server_ns[2] += t.elapsed().as_nanos();
        if i >= 10 {
            black_box(done);
        } else {
            server_ns = [0; 3]; // the first ten warm up
        }
    }
    for (name, ns) in ["req_pq_multi", "req_DH_params", "set_client_DH_params"].iter().zip(server_ns) {
        println!("{:<40} {:>10.0} ns/op", format!("key exchange: {name}"), ns as f64 / 50.0);
    }
    println!("{:<40} {:>10.0} ns/op", "key exchange, server side", server_ns.iter().sum::<u128>() as f64 / 50.0);
}
