//! Typed handlers registered by constructor id, behind one erased shape.
//!
//! A handler is a plain `async fn(Arc<Services>, CallCtx, Request) -> Result<Request::Return,
//! RpcError>`; registration ties the request type to its return type at compile time. The
//! invoke wrappers (`invokeWithLayer`, `initConnection`, `invokeWithoutUpdates`,
//! `invokeAfterMsg(s)`, `invokeWithTakeout`) are generic in grammers-tl-types and are
//! unwrapped here by hand, at most [`MAX_WRAPPERS`] deep.

use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{functions as tlf, types as tlt, Deserializable, Identifiable, RemoteCall, Serializable};
use herald_domain::limits::{Bucket, FloodTable, Limiter};
use herald_domain::model::{ClientInfo, UserId};
use herald_mtproto::wire::{self, Reader, WireError};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub const MAX_WRAPPERS: usize = 8;
/// Most constructors from a type cycle one request may contain. Decoding recurses once per
/// nesting level, so this bounds the decoder's stack depth (see `recursive.rs`).
pub const MAX_RECURSIVE_CONSTRUCTORS: usize = 64;
/// Deepest `JSONValue` accepted in `initConnection.params`.
pub const MAX_JSON_DEPTH: usize = 16;
/// `initConnection` strings are cut to these many bytes (at a character boundary) before
/// they are kept: device, system and app descriptions, then language codes and pack name.
pub const MAX_CLIENT_STRING: usize = 128;
pub const MAX_LANG_STRING: usize = 16;

const INVOKE_WITH_LAYER: u32 = 0xda9b0d0d;
const INIT_CONNECTION: u32 = 0xc1cd5ea9;
const INVOKE_WITHOUT_UPDATES: u32 = 0xbf9459b7;
const INVOKE_AFTER_MSG: u32 = 0xcb9f372d;
const INVOKE_AFTER_MSGS: u32 = 0x3dc4b4f0;
const INVOKE_WITH_TAKEOUT: u32 = 0xaca9fd2e;
/// `invokeWithMessagesRange(range, query)`: history is not split across servers, so the one
/// range (`messages.getSplitRanges`) covers everything and the query runs as it is.
const INVOKE_WITH_MESSAGES_RANGE: u32 = 0x365275f2;
const MESSAGE_RANGE: u32 = 0x0ae30253;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, RpcError>> + Send>>;
type Erased = Box<dyn Fn(Arc<Services>, CallCtx, &[u8]) -> BoxFuture + Send + Sync>;

struct Entry {
    name: &'static str,
    needs_login: bool,
    call: Erased,
    /// Whether a body (after the constructor id) decodes as this request.
    decodes: fn(&[u8]) -> bool,
}

/// Who may call a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Any key, logged in or not (help.*, the login flow).
    Anyone,
    /// Only a key bound to an account; others get 401 AUTH_KEY_UNREGISTERED.
    LoggedIn,
}

pub struct Dispatcher {
    services: Arc<Services>,
    handlers: HashMap<u32, Entry>,
    /// Flood limits per method: methods of one row share its limiter (see [`method_limits`]).
    limits: HashMap<u32, Arc<Limiter<Caller>>>,
}

/// Whose budget a limited method spends: the account, or before login the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Caller {
    User(UserId),
    Addr(std::net::IpAddr),
}

/// The methods limited by a row of the flood table rather than inside the domain, with the
/// row each spends from (docs/security.md §3.6).
fn method_limits(t: &FloodTable) -> HashMap<u32, Arc<Limiter<Caller>>> {
    let rows: [(Bucket, &[u32]); 3] = [
        (t.search, &[tlf::messages::Search::CONSTRUCTOR_ID, tlf::messages::SearchGlobal::CONSTRUCTOR_ID, tlf::contacts::Search::CONSTRUCTOR_ID]),
        (
            t.username_lookups,
            &[tlf::contacts::ResolveUsername::CONSTRUCTOR_ID, tlf::account::CheckUsername::CONSTRUCTOR_ID, tlf::channels::CheckUsername::CONSTRUCTOR_ID],
        ),
        (
            t.profile_edits,
            &[
                tlf::account::UpdateProfile::CONSTRUCTOR_ID,
                tlf::account::UpdateUsername::CONSTRUCTOR_ID,
                tlf::channels::UpdateUsername::CONSTRUCTOR_ID,
                tlf::account::SetPrivacy::CONSTRUCTOR_ID,
            ],
        ),
    ];
    let mut m = HashMap::new();
    for (bucket, methods) in rows {
        let limiter = Arc::new(Limiter::new(bucket));
        for id in methods {
            m.insert(*id, limiter.clone());
        }
    }
    m
}

/// The outcome of one request, for logging and metrics.
pub struct Outcome {
    pub method: &'static str,
    pub result: Result<Vec<u8>, RpcError>,
    /// The request came wrapped in `invokeWithoutUpdates`, or is a file transfer
    /// ([`is_file_query`]): it does not subscribe the connection to updates.
    pub without_updates: bool,
}

impl Dispatcher {
    pub fn new(services: Arc<Services>) -> Self {
        let limits = method_limits(&services.flood);
        let mut d = Self { services, handlers: HashMap::new(), limits };
        crate::handlers::register(&mut d);
        d
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Registers a typed handler for its request's constructor id.
    pub(crate) fn add<R, F, Fut>(&mut self, access: Access, f: F)
    where
        R: RemoteCall + Deserializable + Identifiable + Send + 'static,
        R::Return: Serializable,
        F: Fn(Arc<Services>, CallCtx, R) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R::Return, RpcError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let call: Erased = Box::new(move |s, ctx, body| {
            let req = R::from_bytes(body);
            let f = f.clone();
            Box::pin(async move {
                let req = req.map_err(|_| RpcError::fetch_error())?;
                Ok(f(s, ctx, req).await?.to_bytes())
            })
        });
        let name = grammers_tl_types::name_for_id(R::CONSTRUCTOR_ID);
        let needs_login = access == Access::LoggedIn;
        let decodes = |b: &[u8]| R::from_bytes(b).is_ok();
        assert!(self.handlers.insert(R::CONSTRUCTOR_ID, Entry { name, needs_login, call, decodes }).is_none(), "{name} registered twice");
    }

    /// Runs one API request (the body of a content message) and returns its result object or
    /// error, to be wrapped in `rpc_result` by the caller.
    pub async fn dispatch(&self, ctx: &CallCtx, mut body: &[u8]) -> Outcome {
        let mut without_updates = false;
        // A query inside a wrapper may itself be `gzip_packed` (TDLib packs the one inside
        // invokeWithLayer/initConnection); it is inflated here, bounded like the outer one.
        // One such level per request: nested ones would multiply the inflation bound.
        let mut inflated: Vec<u8>;
        let mut unpacked = false;
        for _ in 0..=MAX_WRAPPERS {
            let Some(id) = wire::constructor_id(body) else {
                return Outcome { method: "?", result: Err(RpcError::fetch_error()), without_updates };
            };
            if id == wire::GZIP_PACKED {
                if std::mem::replace(&mut unpacked, true) {
                    return Outcome { method: "gzip_packed", result: Err(RpcError::bad_request("INPUT_CONSTRUCTOR_INVALID")), without_updates };
                }
                match wire::gunzip_bounded(&body[4..], wire::MAX_INFLATED) {
                    Ok(b) => {
                        inflated = b;
                        body = &inflated;
                        continue;
                    }
                    Err(e) => {
                        let name = if e == WireError::TooLarge { "INPUT_REQUEST_TOO_LONG" } else { "INPUT_CONSTRUCTOR_INVALID" };
                        return Outcome { method: "gzip_packed", result: Err(RpcError::bad_request(name)), without_updates };
                    }
                }
            }
            without_updates |= id == INVOKE_WITHOUT_UPDATES;
            match self.unwrap(ctx, id, &body[4..]).await {
                Ok(Some(inner)) => body = inner,
                Ok(None) => {
                    let (method, result) = self.call(ctx, id, body).await;
                    return Outcome { method, result, without_updates: without_updates || is_file_query(id) };
                }
                Err(e) => return Outcome { method: grammers_tl_types::name_for_id(id), result: Err(e), without_updates },
            }
        }
        Outcome { method: "?", result: Err(RpcError::bad_request("INVOKE_TOO_DEEP")), without_updates }
    }

    async fn call(&self, ctx: &CallCtx, id: u32, body: &[u8]) -> (&'static str, Result<Vec<u8>, RpcError>) {
        let Some(entry) = self.handlers.get(&id) else {
            let name = grammers_tl_types::name_for_id(id);
            if crate::recursive::METHODS.binary_search(&id).is_err() {
                // A type's constructor (boolTrue, inputPeerSelf) or no constructor at all.
                tracing::debug!(constructor = name, id = format_args!("{id:08x}"), "request is not a method");
                let known = !(name.is_empty() || name == "(unknown)");
                return (name, Err(if known { RpcError::not_a_method(id) } else { RpcError::unknown_constructor(id) }));
            }
            tracing::debug!(method = name, id = format_args!("{id:08x}"), "method not implemented");
            return (name, Err(RpcError::not_implemented(name)));
        };
        // Before decoding: a request nested deeper than the stack allows must never reach
        // the recursive decoder. File parts (a long, an int or two, bytes) hold no nested
        // object, and scanning their 512 KiB was a tenth of an upload's CPU.
        if !is_file_part(id) && recursive_constructors(body) > MAX_RECURSIVE_CONSTRUCTORS {
            return (entry.name, Err(RpcError::fetch_error()));
        }
        let user = ctx.key.user();
        if entry.needs_login && user.is_none() {
            return (entry.name, Err(RpcError::unauthorized()));
        }
        if let Some(limiter) = self.limits.get(&id) {
            let caller = user.map_or(Caller::Addr(ctx.peer), Caller::User);
            if let Err(wait) = limiter.take(caller, 1.0, self.services.clock.now_ms()) {
                return (entry.name, Err(RpcError::flood_wait(wait)));
            }
        }
        // Decoded twice only when a mention holds an InputPeer and the request does not
        // decode as sent.
        let compat =
            if is_file_part(id) { None } else { input_user_compat(id, body).or_else(|| mention_compat(body).filter(|_| !(entry.decodes)(&body[4..]))) };
        let body = compat.as_deref().unwrap_or(body);
        let result = (entry.call)(self.services.clone(), ctx.clone(), &body[4..]).await;
        (entry.name, result)
    }

    /// Peels one invoke wrapper: Some(inner query) or None when `id` is not a wrapper.
    async fn unwrap<'a>(&self, ctx: &CallCtx, id: u32, rest: &'a [u8]) -> Result<Option<&'a [u8]>, RpcError> {
        let fetch = |_: WireError| RpcError::fetch_error();
        let mut r = Reader::new(rest);
        match id {
            INVOKE_WITH_LAYER => {
                let layer = r.i32().map_err(fetch)?;
                if layer != grammers_tl_types::LAYER {
                    tracing::debug!(layer, "client layer differs from ours; answering in layer {}", grammers_tl_types::LAYER);
                }
                let mut info = ctx.key.client().unwrap_or_default();
                info.layer = layer;
                ctx.key.set_client(info);
            }
            INIT_CONNECTION => {
                let before = ctx.key.client();
                let info = parse_init_connection(&mut r, before.as_ref().map(|c| c.layer).unwrap_or(0)).map_err(fetch)?;
                // Clients send this on every connect: store it only when it changed, and at most
                // once a minute per key (a client alternating values must not keep the writer busy).
                if before.as_ref() != Some(&info) {
                    ctx.key.set_client(info.clone());
                    if ctx.key.may_store_client() {
                        self.services.keys.set_client_info(ctx.auth_key_id, info).await.map_err(|e| RpcError::from(herald_domain::DomainError::from(e)))?;
                    }
                }
            }
            INVOKE_WITHOUT_UPDATES => {}
            INVOKE_AFTER_MSG | INVOKE_WITH_TAKEOUT => {
                r.i64().map_err(fetch)?;
            }
            INVOKE_AFTER_MSGS => {
                r.long_vector().map_err(fetch)?;
            }
            INVOKE_WITH_MESSAGES_RANGE => skip_message_range(&mut r).map_err(fetch)?,
            _ => return Ok(None),
        }
        Ok(Some(r.rest()))
    }
}

/// File transfers (`upload.*`) never subscribe a connection to updates: Telegram sends updates
/// to the last active connection "except for connections needed for downloading / uploading
/// files", as if these calls were wrapped in `invokeWithoutUpdates` (docs/client-compat.md
/// §4.3: kurigram's media session would otherwise get every update a second time).
pub fn is_file_query(id: u32) -> bool {
    matches!(
        id,
        tlf::upload::SaveFilePart::CONSTRUCTOR_ID
            | tlf::upload::SaveBigFilePart::CONSTRUCTOR_ID
            | tlf::upload::GetFile::CONSTRUCTOR_ID
            | tlf::upload::GetWebFile::CONSTRUCTOR_ID
            | tlf::upload::GetCdnFile::CONSTRUCTOR_ID
            | tlf::upload::ReuploadCdnFile::CONSTRUCTOR_ID
            | tlf::upload::GetCdnFileHashes::CONSTRUCTOR_ID
            | tlf::upload::GetFileHashes::CONSTRUCTOR_ID
    )
}

/// `upload.saveFilePart` / `saveBigFilePart`: flat requests (no field holds an object).
fn is_file_part(id: u32) -> bool {
    matches!(id, tlf::upload::SaveFilePart::CONSTRUCTOR_ID | tlf::upload::SaveBigFilePart::CONSTRUCTOR_ID)
}

/// Reads past a boxed `messageRange` (its bounds are not needed: see
/// [`INVOKE_WITH_MESSAGES_RANGE`]).
fn skip_message_range(r: &mut Reader) -> Result<(), WireError> {
    if r.u32()? != MESSAGE_RANGE {
        return Err(WireError::Malformed);
    }
    r.i32()?;
    r.i32()?;
    Ok(())
}

/// The msg_ids a request must wait for: those named by the `invokeAfterMsg` and
/// `invokeAfterMsgs` wrappers around it (at any of the first [`MAX_WRAPPERS`] levels). The
/// connection runs requests concurrently and starts this one only after those have been
/// answered. Reads without side effects; a malformed wrapper ends the walk (the request then
/// fails in `dispatch` with the usual error).
pub fn waits_for(mut body: &[u8]) -> Vec<i64> {
    let mut after = Vec::new();
    for _ in 0..=MAX_WRAPPERS {
        let Some(id) = wire::constructor_id(body) else { break };
        let mut r = Reader::new(&body[4..]);
        let ok = match id {
            INVOKE_WITH_LAYER => r.i32().is_ok(),
            INIT_CONNECTION => parse_init_connection(&mut r, 0).is_ok(),
            INVOKE_WITHOUT_UPDATES => true,
            INVOKE_WITH_TAKEOUT => r.i64().is_ok(),
            INVOKE_WITH_MESSAGES_RANGE => skip_message_range(&mut r).is_ok(),
            INVOKE_AFTER_MSG => r.i64().map(|m| after.push(m)).is_ok(),
            INVOKE_AFTER_MSGS => r.long_vector().map(|ms| after.extend(ms)).is_ok(),
            _ => break,
        };
        if !ok {
            break;
        }
        body = r.rest();
    }
    after
}

const GET_USERS: u32 = tlf::users::GetUsers::CONSTRUCTOR_ID;
const INPUT_MENTION_NAME: u32 = tlt::InputMessageEntityMentionName::CONSTRUCTOR_ID;
const GET_FULL_USER: u32 = tlf::users::GetFullUser::CONSTRUCTOR_ID;
const INPUT_PEER_SELF: u32 = tlt::InputPeerSelf::CONSTRUCTOR_ID;
const INPUT_PEER_USER: u32 = tlt::InputPeerUser::CONSTRUCTOR_ID;
const INPUT_USER_SELF: u32 = tlt::InputUserSelf::CONSTRUCTOR_ID;
const INPUT_USER: u32 = tlt::InputUser::CONSTRUCTOR_ID;
const INPUT_USER_EMPTY: u32 = tlt::InputUserEmpty::CONSTRUCTOR_ID;

/// Telegram's servers accept an `InputPeer` where the schema asks for an `InputUser`, and
/// kurigram relies on it (`inputPeerSelf`/`inputPeerUser` in `users.getUsers` and
/// `users.getFullUser`; client-compat.md §6.1). The two pairs have the same fields, so the
/// request is rewritten to the `InputUser` constructors before it is decoded. Anything else
/// is left as it is (and decodes, or fails, as before).
fn input_user_compat(method: u32, body: &[u8]) -> Option<Vec<u8>> {
    fn rewrite_one(out: &mut [u8], at: usize) -> Option<usize> {
        let id = u32::from_le_bytes(out.get(at..at + 4)?.try_into().ok()?);
        let (new, size) = match id {
            INPUT_PEER_SELF => (INPUT_USER_SELF, 0),
            INPUT_PEER_USER => (INPUT_USER, 16),
            INPUT_USER_SELF | INPUT_USER_EMPTY => (id, 0),
            INPUT_USER => (id, 16),
            _ => return None,
        };
        out[at..at + 4].copy_from_slice(&new.to_le_bytes());
        Some(at + 4 + size)
    }
    if method != GET_USERS && method != GET_FULL_USER {
        return None;
    }
    let mut out = body.to_vec();
    match method {
        GET_FULL_USER => {
            rewrite_one(&mut out, 4)?;
        }
        GET_USERS => {
            if out.get(4..8)? != wire::VECTOR.to_le_bytes() {
                return None;
            }
            let n = u32::from_le_bytes(out.get(8..12)?.try_into().ok()?) as usize;
            let mut at = 12;
            for _ in 0..n.min(wire::MAX_ID_VECTOR) {
                match rewrite_one(&mut out, at) {
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
        _ => return None,
    }
    (out != body).then_some(out)
}

/// Telethon's markdown and HTML mentions (`[Bob](tg://user?id=…)`) put an `inputPeerUser`
/// (or `inputPeerSelf`) into `inputMessageEntityMentionName.user_id`, where the schema asks
/// for an `InputUser`, and Telegram accepts it (client-compat.md §6.2). Each such mention's
/// user is rewritten to the `InputUser` constructor with the same fields (used only when the
/// request does not decode as sent). TL is 4-byte aligned, so the entity's id
/// sits at an aligned offset, followed by offset and length and then the user.
fn mention_compat(body: &[u8]) -> Option<Vec<u8>> {
    let word = |b: &[u8], at: usize| b.get(at..at + 4).map(|w| u32::from_le_bytes(w.try_into().unwrap()));
    // Copied only when there is a mention to look at (most requests have none).
    if !body.get(4..)?.chunks_exact(4).any(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) == INPUT_MENTION_NAME) {
        return None;
    }
    let mut out = body.to_vec();
    let mut at = 4;
    while at + 16 <= out.len() {
        if word(&out, at) == Some(INPUT_MENTION_NAME) {
            let user = at + 12;
            match word(&out, user) {
                Some(INPUT_PEER_USER) => out[user..user + 4].copy_from_slice(&INPUT_USER.to_le_bytes()),
                Some(INPUT_PEER_SELF) => out[user..user + 4].copy_from_slice(&INPUT_USER_SELF.to_le_bytes()),
                _ => {}
            }
        }
        at += 4;
    }
    (out != body).then_some(out)
}

/// How many ids of constructors on a type cycle appear in `body`. TL is 4-byte aligned, so
/// every constructor id sits at an aligned offset; other aligned words that happen to equal
/// one only make the count an over-estimate.
pub fn recursive_constructors(body: &[u8]) -> usize {
    body.chunks_exact(4).filter(|w| crate::recursive::RECURSIVE_CONSTRUCTORS.binary_search(&u32::from_le_bytes([w[0], w[1], w[2], w[3]])).is_ok()).count()
}

/// initConnection#c1cd5ea9 flags:# api_id:int device_model:string system_version:string
/// app_version:string system_lang_code:string lang_pack:string lang_code:string
/// proxy:flags.0?InputClientProxy params:flags.1?JSONValue query:!X
fn parse_init_connection(r: &mut Reader, layer: i32) -> Result<ClientInfo, WireError> {
    let flags = r.u32()?;
    let api_id = r.i32()?;
    let mut s = |max: usize| r.bytes().map(|b| truncate(&String::from_utf8_lossy(b), max));
    let info = ClientInfo {
        layer,
        api_id,
        device_model: s(MAX_CLIENT_STRING)?,
        system_version: s(MAX_CLIENT_STRING)?,
        app_version: s(MAX_CLIENT_STRING)?,
        system_lang_code: s(MAX_LANG_STRING)?,
        lang_pack: s(MAX_LANG_STRING)?,
        lang_code: s(MAX_LANG_STRING)?,
    };
    if flags & 1 != 0 {
        // inputClientProxy#75588b3f address:string port:int
        r.u32()?;
        r.bytes()?;
        r.i32()?;
    }
    if flags & 2 != 0 {
        skip_json(r, 0)?;
    }
    Ok(info)
}

/// `s` cut to at most `max` bytes, at a character boundary, without control characters.
fn truncate(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// Skips one `JSONValue`, refusing nesting deeper than [`MAX_JSON_DEPTH`].
fn skip_json(r: &mut Reader, depth: usize) -> Result<(), WireError> {
    if depth > MAX_JSON_DEPTH {
        return Err(WireError::TooMany);
    }
    match r.u32()? {
        0x3f6d7b68 => {} // jsonNull
        0xc7345e6a => {
            r.u32()?;
        } // jsonBool
        0x2be0dfa4 => {
            r.take(8)?;
        } // jsonNumber
        0xb71e767a => {
            r.bytes()?;
        } // jsonString
        0xf7444763 => {
            // jsonArray
            if r.u32()? != wire::VECTOR {
                return Err(WireError::Malformed);
            }
            for _ in 0..r.u32()? {
                skip_json(r, depth + 1)?;
            }
        }
        0x99c1d49d => {
            // jsonObject
            if r.u32()? != wire::VECTOR {
                return Err(WireError::Malformed);
            }
            for _ in 0..r.u32()? {
                if r.u32()? != 0xc0de1bd9 {
                    return Err(WireError::Malformed);
                }
                r.bytes()?;
                skip_json(r, depth + 1)?;
            }
        }
        _ => return Err(WireError::Malformed),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_array(depth: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..depth {
            v.extend_from_slice(&0xf7444763u32.to_le_bytes());
            v.extend_from_slice(&wire::VECTOR.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
        }
        v.extend_from_slice(&0x3f6d7b68u32.to_le_bytes());
        v
    }

    #[test]
    fn json_params_are_skipped_with_a_depth_bound() {
        let ok = nested_array(MAX_JSON_DEPTH);
        let mut r = Reader::new(&ok);
        skip_json(&mut r, 0).unwrap();
        assert!(r.rest().is_empty());
        let deep = nested_array(100_000);
        assert_eq!(skip_json(&mut Reader::new(&deep), 0), Err(WireError::TooMany));
        // a huge claimed count with nothing behind it fails at the end of input
        let mut lie = 0xf7444763u32.to_le_bytes().to_vec();
        lie.extend_from_slice(&wire::VECTOR.to_le_bytes());
        lie.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(skip_json(&mut Reader::new(&lie), 0), Err(WireError::Malformed));
    }

    #[test]
    fn recursive_constructors_are_counted() {
        let list = crate::recursive::RECURSIVE_CONSTRUCTORS;
        assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted for binary search");
        // inputPeerUserFromMessage#a87b0a1c peer:InputPeer msg_id:int user_id:long
        assert!(list.binary_search(&0xa87b0a1c).is_ok());
        let mut deep = 0x4423e6c5u32.to_le_bytes().to_vec();
        for _ in 0..1000 {
            deep.extend_from_slice(&0xa87b0a1cu32.to_le_bytes());
        }
        assert_eq!(recursive_constructors(&deep), 1000);
        assert_eq!(recursive_constructors(&functions_get_config()), 0);
    }

    #[test]
    fn waits_for_reads_every_invoke_after_wrapper() {
        let config = functions_get_config();
        assert!(waits_for(&config).is_empty());
        // invokeWithLayer(227, invokeAfterMsgs([5, 6], invokeAfterMsg(7, help.getConfig)))
        let mut body = INVOKE_WITH_LAYER.to_le_bytes().to_vec();
        body.extend_from_slice(&227i32.to_le_bytes());
        body.extend_from_slice(&INVOKE_AFTER_MSGS.to_le_bytes());
        body.extend_from_slice(&wire::VECTOR.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(&5i64.to_le_bytes());
        body.extend_from_slice(&6i64.to_le_bytes());
        body.extend_from_slice(&INVOKE_AFTER_MSG.to_le_bytes());
        body.extend_from_slice(&7i64.to_le_bytes());
        body.extend_from_slice(&config);
        assert_eq!(waits_for(&body), vec![5, 6, 7]);
        // A wrapper cut short: what was read before it stands, nothing panics.
        assert_eq!(waits_for(&body[..body.len() - config.len() - 4]), vec![5, 6]);
        assert!(waits_for(&[]).is_empty());
    }

    fn functions_get_config() -> Vec<u8> {
        grammers_tl_types::functions::help::GetConfig {}.to_bytes()
    }

    #[test]
    fn input_peers_where_input_users_belong_are_mapped() {
        use grammers_tl_types::{enums, functions, types};
        // users.getUsers([inputPeerSelf, inputPeerUser(7, 9), inputUser(8, 1)])
        let mut body = GET_USERS.to_le_bytes().to_vec();
        body.extend_from_slice(&wire::VECTOR.to_le_bytes());
        body.extend_from_slice(&3u32.to_le_bytes());
        body.extend_from_slice(&INPUT_PEER_SELF.to_le_bytes());
        body.extend_from_slice(&INPUT_PEER_USER.to_le_bytes());
        body.extend_from_slice(&7i64.to_le_bytes());
        body.extend_from_slice(&9i64.to_le_bytes());
        body.extend_from_slice(&enums::InputUser::User(types::InputUser { user_id: 8, access_hash: 1 }).to_bytes());
        let fixed = input_user_compat(GET_USERS, &body).unwrap();
        let req = functions::users::GetUsers::from_bytes(&fixed[4..]).unwrap();
        assert_eq!(
            req.id,
            vec![
                enums::InputUser::UserSelf,
                enums::InputUser::User(types::InputUser { user_id: 7, access_hash: 9 }),
                enums::InputUser::User(types::InputUser { user_id: 8, access_hash: 1 }),
            ]
        );
        // users.getFullUser(inputPeerSelf); a well-formed request is left alone
        let full = [GET_FULL_USER.to_le_bytes(), INPUT_PEER_SELF.to_le_bytes()].concat();
        let fixed = input_user_compat(GET_FULL_USER, &full).unwrap();
        assert_eq!(functions::users::GetFullUser::from_bytes(&fixed[4..]).unwrap().id, enums::InputUser::UserSelf);
        let proper = [GET_FULL_USER.to_le_bytes(), INPUT_USER_SELF.to_le_bytes()].concat();
        assert_eq!(input_user_compat(GET_FULL_USER, &proper), None);
    }

    #[test]
    fn input_peers_in_mention_entities_are_mapped() {
        use grammers_tl_types::{enums, functions, types};
        let entity = |user: Vec<u8>| {
            let mut e = INPUT_MENTION_NAME.to_le_bytes().to_vec();
            e.extend_from_slice(&0i32.to_le_bytes());
            e.extend_from_slice(&3i32.to_le_bytes());
            e.extend_from_slice(&user);
            e
        };
        let peer_user = [INPUT_PEER_USER.to_le_bytes().to_vec(), 7i64.to_le_bytes().to_vec(), 9i64.to_le_bytes().to_vec()].concat();
        let mut req = herald_mtproto::testing::send_message(&enums::InputPeer::PeerSelf, "Bob and me".into(), 1);
        req.entities = Some(vec![]);
        let mut req = req.to_bytes();
        // Replace the empty entity vector by two mentions: one by inputPeerUser, one by
        // inputPeerSelf (as Telethon sends them).
        let empty = [wire::VECTOR.to_le_bytes(), 0u32.to_le_bytes()].concat();
        let at = req.windows(8).rposition(|w| w == empty.as_slice()).unwrap();
        let mut vector = [wire::VECTOR.to_le_bytes(), 2u32.to_le_bytes()].concat();
        vector.extend(entity(peer_user));
        vector.extend(entity(INPUT_PEER_SELF.to_le_bytes().to_vec()));
        req.splice(at..at + 8, vector);
        assert!(functions::messages::SendMessage::from_bytes(&req[4..]).is_err(), "as sent, it does not decode");
        let fixed = mention_compat(&req).unwrap();
        let decoded = functions::messages::SendMessage::from_bytes(&fixed[4..]).unwrap();
        assert_eq!(
            decoded.entities.unwrap(),
            vec![
                enums::MessageEntity::InputMessageEntityMentionName(types::InputMessageEntityMentionName {
                    offset: 0,
                    length: 3,
                    user_id: enums::InputUser::User(types::InputUser { user_id: 7, access_hash: 9 }),
                }),
                enums::MessageEntity::InputMessageEntityMentionName(types::InputMessageEntityMentionName {
                    offset: 0,
                    length: 3,
                    user_id: enums::InputUser::UserSelf,
                }),
            ]
        );
        assert_eq!(decoded.message, "Bob and me");
    }

    #[test]
    fn init_connection_strings_are_bounded() {
        let mut b = Vec::new();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&1i32.to_le_bytes());
        let huge = "é".repeat(400_000);
        for s in [huge.as_str(), "Linux\n", "1.0", "en-US-x-very-long-language-tag", "", "en"] {
            wire::write_bytes(&mut b, s.as_bytes());
        }
        let info = parse_init_connection(&mut Reader::new(&b), 227).unwrap();
        assert_eq!(info.device_model, "é".repeat(MAX_CLIENT_STRING / 2));
        assert_eq!(info.system_version, "Linux");
        assert_eq!(info.system_lang_code.len(), MAX_LANG_STRING);
    }

    #[test]
    fn init_connection_fields() {
        let mut b = Vec::new();
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&12345i32.to_le_bytes());
        for s in ["PC 64bit", "Linux", "1.44.0", "en", "", "en"] {
            wire::write_bytes(&mut b, s.as_bytes());
        }
        b.extend_from_slice(&nested_array(2));
        b.extend_from_slice(&0xc4f9186bu32.to_le_bytes());
        let mut r = Reader::new(&b);
        let info = parse_init_connection(&mut r, 227).unwrap();
        assert_eq!((info.api_id, info.device_model.as_str(), info.app_version.as_str(), info.layer), (12345, "PC 64bit", "1.44.0", 227));
        assert_eq!(r.rest(), &0xc4f9186bu32.to_le_bytes());
    }
}
