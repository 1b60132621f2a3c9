//! The client side of MTProto, minimal, for tests that must act as a client: the key
//! exchange (legacy RSA like Telethon, or RSA_PAD like TDLib) and encrypted messages in the
//! client's direction. Not used by the server.

use crate::crypto::{sha1, sha256, AuthKey};
use crate::dh;
use crate::rng::{bytes, Rng, SeededRng};
use crate::rsa::{minimal_be, RsaKey, RsaPublic};
use crate::session::{split_plaintext, Header};
use crate::wire::boxed;
use grammers_tl_types::{enums, functions, types, Cursor, Deserializable, Serializable};

pub struct ClientHandshake {
    rsa: RsaPublic,
    /// When set, sends `p_q_inner_data_dc` naming this DC.
    pub dc: Option<i32>,
    /// When set, a temporary key living this many seconds.
    temp: Option<i32>,
    rng: SeededRng,
    rsa_pad: bool,
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: [u8; 32],
    tmp: ([u8; 32], [u8; 32]),
    g_a: [u8; 256],
    retry_id: i64,
    key: Option<AuthKey>,
}

fn num(b: &[u8]) -> u64 {
    minimal_be(b).iter().fold(0u64, |a, &x| (a << 8) | x as u64)
}

impl ClientHandshake {
    /// A client of the server whose key this is (tests, which hold the whole key).
    pub fn new(rsa: &RsaKey, seed: u64, rsa_pad: bool) -> Self {
        Self::with_public(rsa.public(), seed, rsa_pad)
    }

    /// A client that knows only the server's public key (`server.pub.pem`).
    pub fn with_public(rsa: RsaPublic, seed: u64, rsa_pad: bool) -> Self {
        let mut rng = SeededRng::new(seed);
        let nonce = bytes(&mut rng);
        let new_nonce = bytes(&mut rng);
        Self {
            rsa,
            dc: None,
            temp: None,
            rng,
            rsa_pad,
            nonce,
            server_nonce: [0; 16],
            new_nonce,
            tmp: ([0; 32], [0; 32]),
            g_a: [0; 256],
            retry_id: 0,
            key: None,
        }
    }

    /// Makes a temporary key that expires after `expires_in` seconds (perfect forward
    /// secrecy).
    pub fn temporary(mut self, expires_in: i32) -> Self {
        self.temp = Some(expires_in);
        self
    }

    pub fn req_pq(&self) -> Vec<u8> {
        functions::ReqPqMulti { nonce: self.nonce }.to_bytes()
    }

    pub fn req_dh(&mut self, res_pq: &[u8]) -> Vec<u8> {
        let enums::ResPq::Pq(res) = enums::ResPq::from_bytes(res_pq).expect("resPQ");
        assert_eq!(res.nonce, self.nonce);
        self.server_nonce = res.server_nonce;
        let (p, q) = grammers_crypto::factorize(num(&res.pq));
        let (p, q) = (minimal_be(&p.to_be_bytes()).to_vec(), minimal_be(&q.to_be_bytes()).to_vec());
        let inner = match (self.dc, self.temp) {
            (None, Some(expires_in)) => boxed(&types::PQInnerDataTemp {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce: self.nonce,
                server_nonce: self.server_nonce,
                new_nonce: self.new_nonce,
                expires_in,
            }),
            (Some(dc), Some(expires_in)) => boxed(&types::PQInnerDataTempDc {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce: self.nonce,
                server_nonce: self.server_nonce,
                new_nonce: self.new_nonce,
                dc,
                expires_in,
            }),
            (None, None) => boxed(&types::PQInnerData {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce: self.nonce,
                server_nonce: self.server_nonce,
                new_nonce: self.new_nonce,
            }),
            (Some(dc), None) => boxed(&types::PQInnerDataDc {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce: self.nonce,
                server_nonce: self.server_nonce,
                new_nonce: self.new_nonce,
                dc,
            }),
        };
        let m = if self.rsa_pad { self.rsa_pad_block(&inner) } else { self.legacy_block(&inner) };
        functions::ReqDhParams {
            nonce: self.nonce,
            server_nonce: self.server_nonce,
            p,
            q,
            public_key_fingerprint: res.server_public_key_fingerprints[0],
            encrypted_data: self.rsa.encrypt_raw(&m).to_vec(),
        }
        .to_bytes()
    }

    fn legacy_block(&mut self, inner: &[u8]) -> [u8; 256] {
        let mut m = [0u8; 256];
        m[1..21].copy_from_slice(&sha1(&[inner]));
        m[21..21 + inner.len()].copy_from_slice(inner);
        self.rng.fill(&mut m[21 + inner.len()..]);
        m
    }

    fn rsa_pad_block(&mut self, inner: &[u8]) -> [u8; 256] {
        let mut data = [0u8; 192];
        data[..inner.len()].copy_from_slice(inner);
        self.rng.fill(&mut data[inner.len()..]);
        // As the spec tells clients: retry with a new temp_key until the block is below n.
        loop {
            let m = self.rsa_pad_attempt(&data);
            if m < self.rsa.n_bytes() {
                return m;
            }
        }
    }

    fn rsa_pad_attempt(&mut self, data: &[u8; 192]) -> [u8; 256] {
        let data = *data;
        let temp_key: [u8; 32] = bytes(&mut self.rng);
        let mut rev = data;
        rev.reverse();
        let mut body = [0u8; 224];
        body[..192].copy_from_slice(&rev);
        body[192..].copy_from_slice(&sha256(&[&temp_key, &data]));
        crate::crypto::ige_encrypt(&mut body, &temp_key, &[0u8; 32]);
        let h = sha256(&[&body]);
        let mut m = [0u8; 256];
        for i in 0..32 {
            m[i] = temp_key[i] ^ h[i];
        }
        m[32..].copy_from_slice(&body);
        m
    }

    /// Checks `server_DH_params_ok` like Telethon does and answers `set_client_DH_params`.
    pub fn set_dh(&mut self, server_dh: &[u8]) -> Vec<u8> {
        let enums::ServerDhParams::Ok(ok) = enums::ServerDhParams::from_bytes(server_dh).expect("server_DH_params") else { panic!("server_DH_params_fail") };
        self.tmp = grammers_crypto::generate_key_data_from_nonce(&self.server_nonce, &self.new_nonce);
        let mut ans = ok.encrypted_answer;
        crate::crypto::ige_decrypt(&mut ans, &self.tmp.0, &self.tmp.1);
        let mut cur = Cursor::from_slice(&ans[20..]);
        let enums::ServerDhInnerData::Data(sdh) = enums::ServerDhInnerData::deserialize(&mut cur).expect("server_DH_inner_data");
        assert_eq!(sha1(&[&ans[20..20 + cur.pos()]]), ans[..20]);
        assert_eq!(sdh.dh_prime, dh::prime_bytes());
        assert!(dh::in_safe_range(&sdh.g_a));
        self.g_a = [0u8; 256];
        self.g_a[256 - sdh.g_a.len()..].copy_from_slice(&sdh.g_a);
        self.client_dh()
    }

    /// A fresh `b`, the key it gives, and `set_client_DH_params` carrying `retry_id`.
    fn client_dh(&mut self) -> Vec<u8> {
        let (b, g_b) = dh::new_secret(&mut self.rng);
        self.key = Some(AuthKey::from_bytes(dh::pow(&self.g_a, &b)));
        let inner = boxed(&types::ClientDhInnerData { nonce: self.nonce, server_nonce: self.server_nonce, retry_id: self.retry_id, g_b: g_b.to_vec() });
        let mut data = sha1(&[&inner]).to_vec();
        data.extend_from_slice(&inner);
        data.resize(data.len().div_ceil(16) * 16, 0);
        crate::crypto::ige_encrypt(&mut data, &self.tmp.0, &self.tmp.1);
        functions::SetClientDhParams { nonce: self.nonce, server_nonce: self.server_nonce, encrypted_data: data }.to_bytes()
    }

    /// Checks `dh_gen_retry` and tries again with `retry_id` = the refused key's aux_hash
    /// (or with `retry_id` forced to `wrong`, for negative tests).
    pub fn retry(&mut self, dh_gen_retry: &[u8], wrong: Option<i64>) -> Vec<u8> {
        let enums::SetClientDhParamsAnswer::DhGenRetry(r) = enums::SetClientDhParamsAnswer::from_bytes(dh_gen_retry).expect("dh_gen") else {
            panic!("not dh_gen_retry")
        };
        let refused = self.key.clone().expect("set_dh first");
        assert_eq!(r.new_nonce_hash2, refused.new_nonce_hash(&self.new_nonce, 2));
        self.retry_id = wrong.unwrap_or(i64::from_le_bytes(refused.aux_hash()));
        self.client_dh()
    }

    /// The salt the protocol defines for the new key's first messages:
    /// new_nonce[0..8] XOR server_nonce[0..8].
    pub fn first_salt(&self) -> i64 {
        i64::from_le_bytes(self.new_nonce[..8].try_into().unwrap()) ^ i64::from_le_bytes(self.server_nonce[..8].try_into().unwrap())
    }

    /// Checks `dh_gen_ok` and returns the key both sides now share.
    pub fn finish(&self, dh_gen: &[u8]) -> AuthKey {
        let enums::SetClientDhParamsAnswer::DhGenOk(ok) = enums::SetClientDhParamsAnswer::from_bytes(dh_gen).expect("dh_gen") else { panic!("dh_gen not ok") };
        let key = self.key.clone().expect("set_dh first");
        assert_eq!(ok.new_nonce_hash1, key.new_nonce_hash(&self.new_nonce, 1));
        key
    }
}

/// An encrypted session as a client sees it.
pub struct ClientSession {
    pub key: AuthKey,
    pub session_id: i64,
    pub salt: i64,
    seq: i32,
    last_msg_id: i64,
}

impl ClientSession {
    pub fn new(key: AuthKey, session_id: i64) -> Self {
        Self { key, session_id, salt: 0, seq: 0, last_msg_id: 0 }
    }

    /// A client msg_id for `unix_ms` (divisible by 4, strictly increasing).
    pub fn next_msg_id(&mut self, unix_ms: i64) -> i64 {
        let secs = unix_ms.div_euclid(1000);
        let mut id = (secs << 32) | (((unix_ms.rem_euclid(1000) << 32) / 1000) & !3);
        if id & 0xffff_ffff == 0 {
            id |= 4;
        }
        if id <= self.last_msg_id {
            id = self.last_msg_id + 4;
        }
        self.last_msg_id = id;
        id
    }

    pub fn next_seq(&mut self, content_related: bool) -> i32 {
        if content_related {
            self.seq += 1;
            self.seq * 2 - 1
        } else {
            self.seq * 2
        }
    }

    /// Encrypts one message with explicit header fields (tests forge them at will).
    pub fn encrypt_raw(&self, salt: i64, msg_id: i64, seq_no: i32, body: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        plain.extend_from_slice(&salt.to_le_bytes());
        plain.extend_from_slice(&self.session_id.to_le_bytes());
        plain.extend_from_slice(&msg_id.to_le_bytes());
        plain.extend_from_slice(&seq_no.to_le_bytes());
        plain.extend_from_slice(&(body.len() as u32).to_le_bytes());
        plain.extend_from_slice(body);
        let gk = grammers_crypto::AuthKey::from_bytes(*self.key.bytes());
        let mut buf = grammers_crypto::DequeBuffer::with_capacity(plain.len(), 0);
        buf.extend(plain.iter().copied());
        grammers_crypto::encrypt_data_v2(&mut buf, &gk);
        buf.as_ref().to_vec()
    }

    /// Encrypts a content-related request; returns its msg_id and the wire bytes.
    pub fn encrypt(&mut self, body: &[u8], unix_ms: i64) -> (i64, Vec<u8>) {
        let id = self.next_msg_id(unix_ms);
        let seq = self.next_seq(true);
        (id, self.encrypt_raw(self.salt, id, seq, body))
    }

    /// Decrypts a server message; None if it does not verify.
    pub fn decrypt(&self, payload: &[u8]) -> Option<(Header, Vec<u8>)> {
        let gk = grammers_crypto::AuthKey::from_bytes(*self.key.bytes());
        let mut buf = payload.to_vec();
        let plain = grammers_crypto::decrypt_data_v2(&mut buf, &gk).ok()?.to_vec();
        let (h, body) = split_plaintext(&plain)?;
        Some((h, body.to_vec()))
    }
}

/// `auth.sendCode` for `phone` with empty code settings, as the test clients send it.
pub fn send_code(phone: &str) -> functions::auth::SendCode {
    functions::auth::SendCode {
        phone_number: phone.into(),
        api_id: 1,
        api_hash: "x".into(),
        settings: enums::CodeSettings::Settings(types::CodeSettings {
            allow_flashcall: false,
            current_number: false,
            allow_app_hash: false,
            allow_missed_call: false,
            allow_firebase: false,
            unknown_number: false,
            logout_tokens: None,
            token: None,
            app_sandbox: None,
        }),
    }
}

/// `messages.sendMessage` of plain text.
pub fn send_message(peer: &enums::InputPeer, text: String, random_id: i64) -> functions::messages::SendMessage {
    functions::messages::SendMessage {
        no_webpage: true,
        silent: false,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer: peer.clone(),
        reply_to: None,
        message: text,
        random_id,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
        rich_message: None,
        schedule_repeat_period: None,
    }
}
