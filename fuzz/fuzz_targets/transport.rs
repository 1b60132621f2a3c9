//! Transport framing and obfuscation init: arbitrary bytes, fed in arbitrary chunks, must
//! give frames or a clean error, never a panic, and never allocate past the frame cap.
#![no_main]
use herald_mtproto::rng::SeededRng;
use herald_mtproto::transport::ServerTransport;
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let mut t = ServerTransport::new(MAX_FRAME);
    let mut rng = SeededRng::new(1);
    for piece in rest.chunks(chunk) {
        t.feed(piece);
        loop {
            match t.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_FRAME);
                    let _ = t.encode(&frame, &mut rng);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(t.held() <= 2 * t.buffered() + 64 * 1024 + 2 * chunk);
    }
    let _ = t.encode_error(-429, &mut rng);
});
