//! The encrypted-session state machine behind a verified msg_key: header fields and bodies
//! from the input (containers, gzip_packed, acks, pings, service messages), over a few
//! messages in a row, then packing an answer. Never a panic.
#![no_main]
use herald_mtproto::salt::Salts;
use herald_mtproto::session::{Header, Now, OutMessage, Output, Session};
use libfuzzer_sys::fuzz_target;

const T: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let salts = Salts::new([5; 32]);
    let now = Now { unix_ms: T * 1000 + 500 };
    let mut s = Session::new(1, 9, 2).with_floor((T - 10) << 32);
    let mut rest = data;
    while rest.len() >= 6 {
        // 2 bytes of msg_id offset, 1 of seq_no, 1 of flags, 2 of body length
        let off = i16::from_le_bytes([rest[0], rest[1]]) as i64;
        let seq = rest[2] as i32;
        let flags = rest[3];
        let len = (u16::from_le_bytes([rest[4], rest[5]]) as usize).min(rest.len() - 6);
        let body = &rest[6..6 + len];
        rest = &rest[6 + len..];
        let salt = if flags & 1 == 0 { salts.current(9, T) } else { 0 };
        let mut msg_id = ((T + off / 64) << 32) | (((off & 63) + 1) << 24);
        if flags & 2 != 0 {
            msg_id |= 1;
        }
        let h = Header { salt, session_id: 1, msg_id, seq_no: seq };
        let mut out = Output::default();
        s.receive(h, body, now, &salts, &mut out);
    }
    let _ = s.pack(vec![OutMessage::response(vec![0; 8]), OutMessage::push(vec![1; 8])], now, &salts);
});
