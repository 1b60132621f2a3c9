//! The encrypted-session state machine, one per (auth key, session_id).
//!
//! **Every decrypted client message passes [`Session::receive`]**, which enforces, in order
//! (security.md §1.2): msg_id divisible by 4 with a non-empty fraction (18), the time window
//! (16 too old / 17 too new, for container contents too), the server salt (`bad_server_salt`, 48), replay (duplicates are
//! ignored, a repeated container id gets 19; ids below a full window get 20), seq_no parity and ordering (32/33/34/35), and
//! container rules (64; over 1024 messages or 8192 acked ids is a flood). Service messages are
//! answered here; API requests come out as [`Event::Request`]. Outgoing messages get
//! strictly increasing odd msg_ids (≡1 mod 4 for responses, ≡3 for pushes) from [`Session::pack`].

use crate::salt::Salts;
use crate::wire::{self, InnerMessage, Reader, WireError};
use grammers_tl_types::types;
use std::collections::VecDeque;

/// How many recent client msg_ids are remembered for replay detection (TDLib uses 1000).
pub const REPLAY_WINDOW: usize = 1000;
pub const MAX_PAST_SECS: i64 = 300;
pub const MAX_FUTURE_SECS: i64 = 30;

/// The current time, injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub unix_ms: i64,
}

impl Now {
    pub fn secs(self) -> i64 {
        self.unix_ms.div_euclid(1000)
    }
}

/// What the connection must act on after [`Session::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An API request (invokeWithLayer, initConnection, any method): answer with `rpc_result`
    /// for `msg_id`.
    Request { msg_id: i64, body: Vec<u8> },
    /// The client acknowledged these server msg_ids.
    Acks(Vec<i64>),
    /// `ping_delay_disconnect`: close the connection if no ping arrives within this many seconds.
    DisconnectAfter(i32),
    /// `destroy_session`: the connection answers, since only it knows the other sessions.
    DestroySession { msg_id: i64, session_id: i64 },
    /// Limits exceeded (security.md C11/C13): send transport error -429 and close.
    Flood,
}

/// A message for the client, before msg_id and seq_no are assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    pub body: Vec<u8>,
    pub content_related: bool,
    /// Answers a client message (msg_id ≡ 1 mod 4) rather than a push (≡ 3).
    pub response: bool,
}

impl OutMessage {
    pub fn response(body: Vec<u8>) -> Self {
        Self { body, content_related: true, response: true }
    }
    pub fn push(body: Vec<u8>) -> Self {
        Self { body, content_related: true, response: false }
    }
    fn service(body: Vec<u8>) -> Self {
        Self { body, content_related: false, response: true }
    }
}

#[derive(Debug, Default)]
pub struct Output {
    pub events: Vec<Event>,
    pub replies: Vec<OutMessage>,
}

/// The fixed header of a decrypted client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub salt: i64,
    pub session_id: i64,
    pub msg_id: i64,
    pub seq_no: i32,
}

/// Splits a verified plaintext (see `crypto::decrypt_client_message`) into header and body.
pub fn split_plaintext(plain: &[u8]) -> Option<(Header, &[u8])> {
    let mut r = Reader::new(plain);
    let header = Header { salt: r.i64().ok()?, session_id: r.i64().ok()?, msg_id: r.i64().ok()?, seq_no: r.i32().ok()? };
    let len = r.u32().ok()? as usize;
    Some((header, r.take(len).ok()?))
}

/// The client msg_ids a session has accepted, for replay detection: a sorted ring of at most
/// [`REPLAY_WINDOW`] ids (8 bytes each, allocated as they arrive). Ids older than the time
/// window are dropped early, since the time check (16) refuses them anyway.
#[derive(Debug, Default)]
pub struct ReplayWindow {
    ids: VecDeque<i64>,
    /// Ids at or below this were pushed out of a full window: answered with 20.
    overflow_floor: i64,
}

/// What [`ReplayWindow::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    New,
    Duplicate,
    /// Below a full window: it cannot be known whether it was seen (code 20).
    TooOld,
}

impl ReplayWindow {
    pub fn contains(&self, msg_id: i64) -> bool {
        self.ids.binary_search(&msg_id).is_ok()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Remembers `msg_id` unless it was seen or is below the window. `oldest_valid` is the
    /// lowest msg_id the time window still admits: anything below it may be forgotten.
    pub fn admit(&mut self, msg_id: i64, oldest_valid: i64) -> Admit {
        if msg_id <= self.overflow_floor {
            return Admit::TooOld;
        }
        while self.ids.front().is_some_and(|&f| f < oldest_valid) {
            self.ids.pop_front();
        }
        match self.ids.binary_search(&msg_id) {
            Ok(_) => Admit::Duplicate,
            Err(pos) => {
                if self.ids.len() >= REPLAY_WINDOW {
                    if pos == 0 {
                        return Admit::TooOld;
                    }
                    self.overflow_floor = self.ids.pop_front().unwrap();
                    self.ids.insert(pos - 1, msg_id);
                } else {
                    self.ids.insert(pos, msg_id);
                }
                Admit::New
            }
        }
    }

    /// Bytes held, for accounting.
    pub fn heap_bytes(&self) -> usize {
        self.ids.capacity() * 8
    }
}

/// The msg_id a client would stamp at `unix_ms` (no parity bits).
pub fn msg_id_at(unix_ms: i64) -> i64 {
    let frac = ((unix_ms.rem_euclid(1000)) << 32) / 1000;
    (unix_ms.div_euclid(1000) << 32) | (frac & !3)
}

pub struct Session {
    id: i64,
    auth_key_id: i64,
    unique_id: i64,
    seen: ReplayWindow,
    /// Client msg_ids at or below this are refused with 16: they may have been processed
    /// by a session this one replaces (before a restart, a `destroy_session` or an
    /// eviction), whose memory of them is gone.
    min_msg_id: i64,
    /// The highest client msg_id accepted, which becomes the next session's `min_msg_id`
    /// when this one is forgotten.
    max_seen: i64,
    /// The salt the key exchange handed out (`new_nonce ^ server_nonce`), accepted until
    /// the given unix time (security.md §1.4).
    first_salt: Option<(i64, i64)>,
    /// Set when the registry forgets this session: a connection that still holds it must
    /// fetch the session that replaces it.
    retired: bool,
    last_content: Option<(i64, i32)>,
    last_out_msg_id: i64,
    out_content: i32,
    announced: bool,
}

fn bad_msg(msg_id: i64, seq_no: i32, code: i32) -> OutMessage {
    OutMessage::service(wire::boxed(&types::BadMsgNotification { bad_msg_id: msg_id, bad_msg_seqno: seq_no, error_code: code }))
}

/// C5/C8 (18), C6 (16 too old, 17 too new) for one client msg_id.
fn msg_id_error(msg_id: i64, now: Now) -> Option<i32> {
    let sent = msg_id >> 32;
    if msg_id % 4 != 0 || msg_id & 0xffff_ffff == 0 {
        Some(18)
    } else if sent < now.secs() - MAX_PAST_SECS {
        Some(16)
    } else if sent > now.secs() + MAX_FUTURE_SECS {
        Some(17)
    } else {
        None
    }
}

fn is_content_related(body: &[u8]) -> bool {
    !matches!(wire::constructor_id(body), Some(wire::MSGS_ACK | wire::MSG_CONTAINER))
}

/// Service messages Telegram's servers accept with an even seq_no as well as an odd one:
/// TDLib sends `ping_delay_disconnect`, `get_future_salts`, `msgs_state_req`,
/// `msg_resend_req` and `http_wait` that way, and Pyrogram's forks their first `ping`
/// (client-compat.md §0.12); `destroy_session` likewise. Refusing them (35) makes TDLib drop
/// the session. (`destroy_auth_key` is not served yet, so it is not on the list.)
fn may_be_even(body: &[u8]) -> bool {
    matches!(
        wire::constructor_id(body),
        Some(
            wire::PING
                | wire::PING_DELAY_DISCONNECT
                | wire::GET_FUTURE_SALTS
                | wire::MSGS_STATE_REQ
                | wire::MSG_RESEND_REQ
                | wire::HTTP_WAIT
                | wire::DESTROY_SESSION
        )
    )
}

impl Session {
    pub fn new(id: i64, auth_key_id: i64, unique_id: i64) -> Self {
        Self {
            id,
            auth_key_id,
            unique_id,
            seen: ReplayWindow::default(),
            min_msg_id: 0,
            max_seen: 0,
            first_salt: None,
            retired: false,
            last_content: None,
            last_out_msg_id: 0,
            out_content: 0,
            announced: false,
        }
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    /// Refuse (with 16) client msg_ids at or below `floor` (see `min_msg_id`).
    pub fn with_floor(mut self, floor: i64) -> Self {
        self.min_msg_id = floor;
        self.max_seen = self.max_seen.max(floor);
        self
    }

    /// Also accept `salt` until `until_secs` (the key exchange's initial salt).
    pub fn with_first_salt(mut self, salt: i64, until_secs: i64) -> Self {
        self.first_salt = Some((salt, until_secs));
        self
    }

    /// The highest client msg_id this session has accepted (or its floor).
    pub fn max_seen(&self) -> i64 {
        self.max_seen
    }

    /// Marks the session forgotten and returns the floor its successor must keep.
    pub fn retire(&mut self) -> i64 {
        self.retired = true;
        self.max_seen
    }

    pub fn is_retired(&self) -> bool {
        self.retired
    }

    /// Heap bytes the session holds (its replay window).
    pub fn heap_bytes(&self) -> usize {
        self.seen.heap_bytes()
    }

    /// Processes one decrypted message addressed to this session.
    pub fn receive(&mut self, h: Header, body: &[u8], now: Now, salts: &Salts, out: &mut Output) {
        let (msg_id, seq_no) = (h.msg_id, h.seq_no);
        if let Some(code) = msg_id_error(msg_id, now) {
            return out.replies.push(bad_msg(msg_id, seq_no, code));
        }
        let first_salt_ok = self.first_salt.is_some_and(|(s, until)| s == h.salt && now.secs() < until);
        if !first_salt_ok && !salts.is_valid(self.auth_key_id, h.salt, now.secs()) {
            let salt = salts.current(self.auth_key_id, now.secs());
            let b = types::BadServerSalt { bad_msg_id: msg_id, bad_msg_seqno: seq_no, error_code: 48, new_server_salt: salt };
            return out.replies.push(OutMessage::service(wire::boxed(&b)));
        }
        let is_container = wire::constructor_id(body) == Some(wire::MSG_CONTAINER);
        if is_container && self.seen.contains(msg_id) {
            return out.replies.push(bad_msg(msg_id, seq_no, 19));
        }
        if !self.remember(msg_id, seq_no, now, out) {
            return;
        }
        if !self.announced {
            self.announced = true;
            let salt = salts.current(self.auth_key_id, now.secs());
            let n = types::NewSessionCreated { first_msg_id: msg_id, unique_id: self.unique_id, server_salt: salt };
            out.replies.push(OutMessage { body: wire::boxed(&n), content_related: true, response: false });
        }
        if is_container {
            if seq_no % 2 != 0 {
                return out.replies.push(bad_msg(msg_id, seq_no, 34));
            }
            let inner = match wire::parse_container(&body[4..]) {
                Ok(v) => v,
                Err(WireError::TooMany) => return out.events.push(Event::Flood),
                Err(_) => return out.replies.push(bad_msg(msg_id, seq_no, 64)),
            };
            if inner.iter().any(|m| m.msg_id >= msg_id || wire::constructor_id(&m.body) == Some(wire::MSG_CONTAINER)) {
                return out.replies.push(bad_msg(msg_id, seq_no, 64));
            }
            // One inflation budget for the whole message, however many gzip_packed it holds.
            let mut budget = wire::MAX_INFLATED;
            for m in inner {
                let InnerMessage { msg_id, seq_no, body } = m;
                if let Some(code) = msg_id_error(msg_id, now) {
                    out.replies.push(bad_msg(msg_id, seq_no, code));
                } else if self.remember(msg_id, seq_no, now, out) {
                    self.object(msg_id, seq_no, &body, now, salts, &mut budget, out);
                }
            }
        } else {
            self.object(msg_id, seq_no, body, now, salts, &mut { wire::MAX_INFLATED }, out);
        }
    }

    /// Replay protection. Returns false when the message must not be processed.
    fn remember(&mut self, msg_id: i64, seq_no: i32, now: Now, out: &mut Output) -> bool {
        if msg_id <= self.min_msg_id {
            // Possibly processed by a session this one replaces: the client resyncs its
            // clock from this answer and resends under a new msg_id.
            out.replies.push(bad_msg(msg_id, seq_no, 16));
            return false;
        }
        let oldest_valid = (now.secs() - MAX_PAST_SECS) << 32;
        match self.seen.admit(msg_id, oldest_valid) {
            Admit::New => {
                self.max_seen = self.max_seen.max(msg_id);
                true
            }
            Admit::Duplicate => false,
            Admit::TooOld => {
                out.replies.push(bad_msg(msg_id, seq_no, 20));
                false
            }
        }
    }

    /// 35: odd expected (content-related), even received; 34: even expected, odd received;
    /// 32/33: lower/higher than a message with a higher/lower msg_id (equal counts: content
    /// seq_nos are unique).
    fn check_seq(&mut self, msg_id: i64, seq_no: i32, content: bool) -> Option<i32> {
        if content && seq_no % 2 == 0 {
            return Some(35);
        }
        if !content {
            return (seq_no % 2 != 0).then_some(34);
        }
        if let Some((last_id, last_seq)) = self.last_content {
            if msg_id > last_id && seq_no <= last_seq {
                return Some(32);
            }
            if msg_id < last_id && seq_no >= last_seq {
                return Some(33);
            }
        }
        if self.last_content.is_none_or(|(id, _)| msg_id > id) {
            self.last_content = Some((msg_id, seq_no));
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn object(&mut self, msg_id: i64, seq_no: i32, body: &[u8], now: Now, salts: &Salts, budget: &mut usize, out: &mut Output) {
        let content = is_content_related(body) && !(seq_no % 2 == 0 && may_be_even(body));
        if let Some(code) = self.check_seq(msg_id, seq_no, content) {
            return out.replies.push(bad_msg(msg_id, seq_no, code));
        }
        let inflated;
        let body = if wire::constructor_id(body) == Some(wire::GZIP_PACKED) {
            match wire::gunzip_bounded(&body[4..], *budget) {
                Ok(b) => {
                    *budget -= b.len();
                    inflated = b;
                    &inflated[..]
                }
                Err(e) => {
                    let msg = if e == WireError::TooLarge { "INPUT_REQUEST_TOO_LONG" } else { "INPUT_CONSTRUCTOR_INVALID" };
                    return out.replies.push(OutMessage::response(wire::rpc_result(msg_id, &wire::rpc_error(400, msg))));
                }
            }
        } else {
            body
        };
        let Some(id) = wire::constructor_id(body) else {
            return out.replies.push(bad_msg(msg_id, seq_no, 64));
        };
        let mut r = Reader::new(&body[4..]);
        match id {
            wire::MSGS_ACK => match r.long_vector() {
                Ok(ids) => out.events.push(Event::Acks(ids)),
                Err(WireError::TooMany) => out.events.push(Event::Flood),
                Err(_) => {}
            },
            wire::PING | wire::PING_DELAY_DISCONNECT => {
                let Ok(ping_id) = r.i64() else { return };
                out.replies.push(OutMessage::response(wire::boxed(&types::Pong { msg_id, ping_id })));
                if id == wire::PING_DELAY_DISCONNECT {
                    if let Ok(delay) = r.i32() {
                        out.events.push(Event::DisconnectAfter(delay));
                    }
                }
            }
            wire::GET_FUTURE_SALTS => {
                let num = r.i32().unwrap_or(1);
                let salts = salts
                    .future(self.auth_key_id, now.secs(), num)
                    .into_iter()
                    .map(|(valid_since, valid_until, salt)| types::FutureSalt { valid_since, valid_until, salt })
                    .collect();
                let fs = types::FutureSalts { req_msg_id: msg_id, now: now.secs() as i32, salts: grammers_tl_types::RawVec(salts) };
                out.replies.push(OutMessage::response(wire::boxed(&fs)));
            }
            wire::DESTROY_SESSION => {
                if let Ok(session_id) = r.i64() {
                    out.events.push(Event::DestroySession { msg_id, session_id });
                }
            }
            wire::RPC_DROP_ANSWER => {
                out.replies.push(OutMessage::response(wire::rpc_result(msg_id, &wire::RPC_ANSWER_UNKNOWN.to_le_bytes())));
            }
            wire::MSGS_STATE_REQ | wire::MSG_RESEND_REQ => match r.long_vector() {
                // 1 = "nothing is known about the message": we keep no per-message history.
                Ok(ids) => {
                    let info = types::MsgsStateInfo { req_msg_id: msg_id, info: vec![1u8; ids.len()] };
                    out.replies.push(OutMessage::response(wire::boxed(&info)));
                }
                Err(WireError::TooMany) => out.events.push(Event::Flood),
                Err(_) => {}
            },
            // Client-side service messages that need nothing from us.
            wire::HTTP_WAIT | wire::MSGS_STATE_INFO => {}
            _ => out.events.push(Event::Request { msg_id, body: body.to_vec() }),
        }
    }

    fn next_msg_id(&mut self, now: Now, response: bool) -> i64 {
        let frac = ((now.unix_ms.rem_euclid(1000)) << 32) / 1000;
        let residue = if response { 1 } else { 3 };
        let mut id = (now.secs() << 32) | (frac & !3) | residue;
        if id <= self.last_out_msg_id {
            id = (self.last_out_msg_id & !3) + 4 + residue;
        }
        self.last_out_msg_id = id;
        id
    }

    fn next_seq(&mut self, content_related: bool) -> i32 {
        if content_related {
            self.out_content += 1;
            self.out_content * 2 - 1
        } else {
            self.out_content * 2
        }
    }

    /// Serializes messages for the client as one plaintext (salt ‖ session_id ‖ msg_id ‖
    /// seq_no ‖ len ‖ body), wrapping several in a `msg_container`. Encrypt the result with
    /// `crypto::encrypt_server_message`.
    pub fn pack(&mut self, messages: Vec<OutMessage>, now: Now, salts: &Salts) -> Vec<u8> {
        let mut out = Vec::new();
        self.pack_into(messages, now, salts, &mut out);
        out
    }

    /// [`Session::pack`], appending the plaintext to `out` in one pass: no container or
    /// plaintext is built and copied separately. `out` may hold a prefix already (the
    /// 24 bytes [`crate::crypto::encrypt_server_message_in_place`] fills in), and gets room
    /// for the encryption's padding too, so a push costs one buffer from here to the wire.
    pub fn pack_into(&mut self, messages: Vec<OutMessage>, now: Now, salts: &Salts, out: &mut Vec<u8>) {
        let salt = salts.current(self.auth_key_id, now.secs());
        let body_len = match messages.as_slice() {
            [one] => one.body.len(),
            many => 8 + many.iter().map(|m| 16 + m.body.len()).sum::<usize>(),
        };
        out.reserve(32 + body_len + crate::crypto::MAX_SERVER_PADDING);
        let start = out.len();
        out.extend_from_slice(&salt.to_le_bytes());
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&[0u8; 12]); // msg_id and seq_no, known once the inner ones are
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        let (msg_id, seq_no) = if messages.len() == 1 {
            let m = messages.into_iter().next().unwrap();
            out.extend_from_slice(&m.body);
            (self.next_msg_id(now, m.response), self.next_seq(m.content_related))
        } else {
            out.extend_from_slice(&wire::MSG_CONTAINER.to_le_bytes());
            out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
            for m in messages {
                // Inner ids first: the container's msg_id is the greatest.
                out.extend_from_slice(&self.next_msg_id(now, m.response).to_le_bytes());
                out.extend_from_slice(&self.next_seq(m.content_related).to_le_bytes());
                out.extend_from_slice(&(m.body.len() as u32).to_le_bytes());
                out.extend_from_slice(&m.body);
            }
            (self.next_msg_id(now, false), self.next_seq(false))
        };
        out[start + 16..start + 24].copy_from_slice(&msg_id.to_le_bytes());
        out[start + 24..start + 28].copy_from_slice(&seq_no.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_tl_types::{enums, Deserializable};

    const T: i64 = 1_800_000_000;
    fn now() -> Now {
        Now { unix_ms: T * 1000 + 250 }
    }
    fn salts() -> Salts {
        Salts::new([1; 32])
    }
    fn session() -> Session {
        Session::new(77, 5, 99)
    }
    fn header(msg_id: i64, seq_no: i32) -> Header {
        Header { salt: salts().current(5, T), session_id: 77, msg_id, seq_no }
    }
    pub(super) fn mid(offset_secs: i64, n: i64) -> i64 {
        ((T + offset_secs) << 32) | (n * 4)
    }
    fn request(id: u32) -> Vec<u8> {
        id.to_le_bytes().to_vec()
    }
    pub(super) fn codes(out: &Output) -> Vec<i32> {
        out.replies
            .iter()
            .filter_map(|m| match enums::BadMsgNotification::from_bytes(&m.body) {
                Ok(enums::BadMsgNotification::Notification(n)) => Some(n.error_code),
                Ok(enums::BadMsgNotification::BadServerSalt(s)) => Some(s.error_code),
                Err(_) => None,
            })
            .collect()
    }
    fn run(s: &mut Session, h: Header, body: &[u8]) -> Output {
        let mut out = Output::default();
        s.receive(h, body, now(), &salts(), &mut out);
        out
    }

    #[test]
    fn first_message_announces_the_session_then_requests_flow() {
        let mut s = session();
        let out = run(&mut s, header(mid(0, 1), 1), &request(0xdeadbeef));
        assert_eq!(out.events, vec![Event::Request { msg_id: mid(0, 1), body: request(0xdeadbeef) }]);
        let enums::NewSession::Created(n) = enums::NewSession::from_bytes(&out.replies[0].body).unwrap();
        assert_eq!(n.first_msg_id, mid(0, 1));
        let out = run(&mut s, header(mid(0, 2), 3), &request(0xdeadbeef));
        assert_eq!(out.replies.len(), 0);
        assert_eq!(out.events.len(), 1);
    }

    #[test]
    fn msg_id_rules_give_the_spec_codes() {
        let mut s = session();
        assert_eq!(codes(&run(&mut s, header(mid(0, 1) | 1, 1), &request(1))), vec![18]);
        assert_eq!(codes(&run(&mut s, header(T << 32, 1), &request(1))), vec![18]);
        assert_eq!(codes(&run(&mut s, header(mid(-301, 1), 1), &request(1))), vec![16]);
        assert_eq!(codes(&run(&mut s, header(mid(31, 1), 1), &request(1))), vec![17]);
        // within the window: accepted
        assert_eq!(run(&mut s, header(mid(-290, 1), 1), &request(1)).events.len(), 1);
        assert_eq!(run(&mut s, header(mid(25, 1), 3), &request(1)).events.len(), 1);
    }

    #[test]
    fn bad_salt_gets_48_with_the_current_salt() {
        let mut s = session();
        let mut h = header(mid(0, 1), 1);
        h.salt = 0;
        let out = run(&mut s, h, &request(1));
        let enums::BadMsgNotification::BadServerSalt(b) = enums::BadMsgNotification::from_bytes(&out.replies[0].body).unwrap() else { panic!() };
        assert_eq!((b.error_code, b.bad_msg_id, b.new_server_salt), (48, mid(0, 1), salts().current(5, T)));
        assert!(out.events.is_empty());
    }

    #[test]
    fn replays_are_ignored_and_too_old_ids_get_20() {
        let mut s = session();
        assert_eq!(run(&mut s, header(mid(0, 1), 1), &request(1)).events.len(), 1);
        let again = run(&mut s, header(mid(0, 1), 1), &request(1));
        assert!(again.events.is_empty() && again.replies.is_empty());
        for i in 0..REPLAY_WINDOW as i64 {
            run(&mut s, header(mid(1, i + 1), 3 + 2 * i as i32), &request(1));
        }
        assert_eq!(codes(&run(&mut s, header(mid(0, 2), 1), &request(1))), vec![20]);
    }

    #[test]
    fn service_messages_may_come_with_an_even_seq_no() {
        let mut s = session();
        let ping = [&wire::PING.to_le_bytes()[..], &5i64.to_le_bytes()].concat();
        let out = run(&mut s, header(mid(0, 1), 0), &ping);
        assert!(codes(&out).is_empty());
        assert!(out.replies.iter().any(|m| enums::Pong::from_bytes(&m.body).is_ok()));
        let salts_req = [&wire::GET_FUTURE_SALTS.to_le_bytes()[..], &1i32.to_le_bytes()].concat();
        assert!(codes(&run(&mut s, header(mid(0, 2), 0), &salts_req)).is_empty());
        // an API request still needs an odd one
        assert_eq!(codes(&run(&mut s, header(mid(0, 3), 0), &request(1))), vec![35]);
    }

    #[test]
    fn seq_no_parity_and_order() {
        let mut s = session();
        assert_eq!(codes(&run(&mut s, header(mid(0, 1), 2), &request(1))), vec![35]);
        let ack = [&wire::MSGS_ACK.to_le_bytes()[..], &wire::VECTOR.to_le_bytes(), &0u32.to_le_bytes()].concat();
        assert_eq!(codes(&run(&mut s, header(mid(0, 2), 3), &ack)), vec![34]);
        assert!(codes(&run(&mut s, header(mid(0, 3), 9), &request(1))).is_empty());
        assert_eq!(codes(&run(&mut s, header(mid(0, 4), 7), &request(1))), vec![32]);
        // an equal seq_no on a later message is too low as well
        assert_eq!(codes(&run(&mut s, header(mid(0, 5), 9), &request(1))), vec![32]);
        assert_eq!(codes(&run(&mut s, header(mid(-1, 5), 11), &request(1))), vec![33]);
    }

    #[test]
    fn containers_are_unpacked_and_checked() {
        let mut s = session();
        let ack = [&wire::MSGS_ACK.to_le_bytes()[..], &wire::VECTOR.to_le_bytes(), &1u32.to_le_bytes(), &42i64.to_le_bytes()].concat();
        let c = wire::container(&[InnerMessage { msg_id: mid(0, 1), seq_no: 1, body: request(7) }, InnerMessage { msg_id: mid(0, 2), seq_no: 2, body: ack }]);
        let out = run(&mut s, header(mid(0, 3), 2), &c);
        assert_eq!(out.events, vec![Event::Request { msg_id: mid(0, 1), body: request(7) }, Event::Acks(vec![42])]);
        // inner id not below the container's, and nested containers: 64
        let bad = wire::container(&[InnerMessage { msg_id: mid(0, 9), seq_no: 1, body: request(7) }]);
        assert_eq!(codes(&run(&mut s, header(mid(0, 5), 4), &bad)), vec![64]);
        let nested = wire::container(&[InnerMessage { msg_id: mid(0, 6), seq_no: 2, body: c.clone() }]);
        assert_eq!(codes(&run(&mut s, header(mid(0, 7), 4), &nested)), vec![64]);
        // odd seq_no on a container: 34
        assert_eq!(codes(&run(&mut s, header(mid(0, 8), 5), &c)), vec![34]);
        // the first container's id again: 19
        assert_eq!(codes(&run(&mut s, header(mid(0, 3), 2), &c)), vec![19]);
        // over 1024 messages: flood
        let mut many = wire::MSG_CONTAINER.to_le_bytes().to_vec();
        many.extend_from_slice(&2000u32.to_le_bytes());
        assert_eq!(run(&mut s, header(mid(0, 10), 4), &many).events, vec![Event::Flood]);
        // an ack vector over 8192 ids: flood
        let big_ack = [&wire::MSGS_ACK.to_le_bytes()[..], &wire::VECTOR.to_le_bytes(), &9000u32.to_le_bytes()].concat();
        assert_eq!(run(&mut s, header(mid(0, 11), 4), &big_ack).events, vec![Event::Flood]);
    }

    #[test]
    fn gzip_requests_are_inflated_and_bombs_refused() {
        let mut s = session();
        let mut req = request(0x0d91a548);
        req.resize(4000, 0);
        let packed = wire::gzip_if_smaller(req.clone());
        assert_eq!(wire::constructor_id(&packed), Some(wire::GZIP_PACKED));
        let out = run(&mut s, header(mid(0, 1), 1), &packed);
        assert_eq!(out.events, vec![Event::Request { msg_id: mid(0, 1), body: req }]);
        // a container of gzip_packed shares one budget: the second 1.5 MiB body is refused
        let big = wire::gzip_if_smaller(vec![0u8; 3 << 19]);
        let c =
            wire::container(&[InnerMessage { msg_id: mid(0, 10), seq_no: 5, body: big.clone() }, InnerMessage { msg_id: mid(0, 11), seq_no: 7, body: big }]);
        let out = run(&mut s, header(mid(0, 12), 8), &c);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.replies.last().unwrap().body, wire::rpc_result(mid(0, 11), &wire::rpc_error(400, "INPUT_REQUEST_TOO_LONG")));
        let bomb = wire::gzip_if_smaller(vec![0u8; wire::MAX_INFLATED + 10]);
        let out = run(&mut s, header(mid(0, 2), 3), &bomb);
        assert!(out.events.is_empty());
        assert_eq!(out.replies[0].body, wire::rpc_result(mid(0, 2), &wire::rpc_error(400, "INPUT_REQUEST_TOO_LONG")));
    }

    #[test]
    fn ping_and_ping_delay_disconnect() {
        let mut s = session();
        let ping = [&wire::PING_DELAY_DISCONNECT.to_le_bytes()[..], &5i64.to_le_bytes(), &25i32.to_le_bytes()].concat();
        let out = run(&mut s, header(mid(0, 1), 1), &ping);
        assert_eq!(out.events, vec![Event::DisconnectAfter(25)]);
        let pong = out.replies.iter().find_map(|m| enums::Pong::from_bytes(&m.body).ok()).unwrap();
        let enums::Pong::Pong(p) = pong;
        assert_eq!((p.msg_id, p.ping_id), (mid(0, 1), 5));
    }

    #[test]
    fn outgoing_ids_are_odd_increasing_and_typed() {
        let mut s = session();
        let mut last = 0;
        for i in 0..50 {
            let p = s.pack(vec![OutMessage { body: vec![0; 4], content_related: true, response: i % 2 == 0 }], now(), &salts());
            let id = i64::from_le_bytes(p[16..24].try_into().unwrap());
            assert!(id > last);
            assert_eq!(id % 4, if i % 2 == 0 { 1 } else { 3 });
            assert_eq!(i64::from_le_bytes(p[8..16].try_into().unwrap()), 77);
            assert_eq!(i32::from_le_bytes(p[24..28].try_into().unwrap()), 2 * i + 1);
            last = id;
        }
        // several messages go in one container whose id is the largest
        let p = s.pack(vec![OutMessage::response(vec![1; 4]), OutMessage::push(vec![2; 4])], now(), &salts());
        let (h, body) = split_plaintext(&p).unwrap();
        let inner = wire::parse_container(&body[4..]).unwrap();
        assert!(inner.iter().all(|m| m.msg_id < h.msg_id && m.msg_id > last));
        assert_eq!(h.seq_no % 2, 0);
        assert_eq!(inner.iter().map(|m| m.body.clone()).collect::<Vec<_>>(), vec![vec![1; 4], vec![2; 4]]);
        assert_eq!(h.msg_id % 4, 3);
    }

    /// `pack_into` appends exactly what `pack` returns, after whatever `out` held.
    #[test]
    fn pack_into_appends_what_pack_returns() {
        for count in [1usize, 3] {
            let msgs = || (0..count).map(|i| OutMessage::push(vec![i as u8; 8 + i * 4])).collect::<Vec<_>>();
            let (mut a, mut b) = (session(), session());
            let packed = a.pack(msgs(), now(), &salts());
            let mut out = vec![9u8; 24];
            b.pack_into(msgs(), now(), &salts(), &mut out);
            assert_eq!(&out[..24], &[9u8; 24]);
            assert_eq!(&out[24..], &packed[..]);
            assert!(out.capacity() >= out.len() + crate::crypto::MAX_SERVER_PADDING, "room for the padding");
        }
    }
}

#[cfg(test)]
mod replay_tests {
    use super::tests::{codes, mid};
    use super::*;

    const T: i64 = 1_800_000_000;
    fn now() -> Now {
        Now { unix_ms: T * 1000 }
    }
    #[test]
    fn a_successor_session_refuses_what_its_predecessor_may_have_run() {
        let salts = Salts::new([1; 32]);
        let h = |id| Header { salt: salts.current(5, T), session_id: 77, msg_id: id, seq_no: 1 };
        let mut old = Session::new(77, 5, 1);
        let mut out = Output::default();
        old.receive(h(mid(-10, 1)), &1u32.to_le_bytes(), now(), &salts, &mut out);
        assert_eq!(out.events.len(), 1);
        let floor = old.retire();
        assert!(old.is_retired() && floor == mid(-10, 1));
        // the replacement refuses the captured message with 16, and takes newer ones
        let mut new = Session::new(77, 5, 2).with_floor(floor);
        let mut out = Output::default();
        new.receive(h(mid(-10, 1)), &1u32.to_le_bytes(), now(), &salts, &mut out);
        assert!(out.events.is_empty());
        assert_eq!(codes(&out), vec![16]);
        let mut out = Output::default();
        new.receive(h(mid(-9, 1)), &1u32.to_le_bytes(), now(), &salts, &mut out);
        assert_eq!(out.events.len(), 1);
    }

    #[test]
    fn the_key_exchange_salt_is_accepted_while_fresh() {
        let salts = Salts::new([1; 32]);
        let mut s = Session::new(77, 5, 1).with_first_salt(0x1234, T + 10);
        let mut out = Output::default();
        s.receive(Header { salt: 0x1234, session_id: 77, msg_id: mid(0, 1), seq_no: 1 }, &1u32.to_le_bytes(), now(), &salts, &mut out);
        assert_eq!(out.events.len(), 1);
        let mut out = Output::default();
        let later = Now { unix_ms: (T + 11) * 1000 };
        s.receive(Header { salt: 0x1234, session_id: 77, msg_id: mid(11, 1), seq_no: 3 }, &1u32.to_le_bytes(), later, &salts, &mut out);
        assert_eq!(codes(&out), vec![48]);
    }

    #[test]
    fn the_window_is_a_compact_sorted_ring() {
        let mut w = ReplayWindow::default();
        // out of order arrivals are kept sorted; duplicates found
        for n in [5, 1, 3, 2, 4] {
            assert_eq!(w.admit(mid(0, n), 0), Admit::New);
        }
        assert_eq!(w.admit(mid(0, 3), 0), Admit::Duplicate);
        assert_eq!(w.len(), 5);
        // ids older than the time window are dropped, nothing else
        assert_eq!(w.admit(mid(100, 1), mid(50, 0)), Admit::New);
        assert_eq!(w.len(), 1);
        // a full window pushes its lowest id out and refuses anything at or below it
        let mut w = ReplayWindow::default();
        for n in 1..=REPLAY_WINDOW as i64 + 1 {
            assert_eq!(w.admit(mid(0, n), 0), Admit::New);
        }
        assert_eq!(w.len(), REPLAY_WINDOW);
        assert_eq!(w.admit(mid(0, 1), 0), Admit::TooOld);
        assert!(w.heap_bytes() <= 8 * 2 * REPLAY_WINDOW);
    }
}
