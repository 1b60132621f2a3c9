//! The TL request decoder, as the dispatcher uses it: a request that passes the count of
//! constructors from type cycles (the bound checked before decoding) is decoded as each of
//! the methods Herald serves. Decoding may fail, but must never panic or overflow the stack.
#![no_main]
use grammers_tl_types::{functions as f, Deserializable};
use herald_rpc::dispatch::{recursive_constructors, MAX_RECURSIVE_CONSTRUCTORS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if recursive_constructors(data) > MAX_RECURSIVE_CONSTRUCTORS {
        return;
    }
    let _ = f::auth::SendCode::from_bytes(data);
    let _ = f::auth::SignIn::from_bytes(data);
    let _ = f::auth::SignUp::from_bytes(data);
    let _ = f::users::GetUsers::from_bytes(data);
    let _ = f::users::GetFullUser::from_bytes(data);
    let _ = f::account::UpdateProfile::from_bytes(data);
    let _ = f::contacts::ResolveUsername::from_bytes(data);
    let _ = f::messages::SendMessage::from_bytes(data);
    let _ = f::messages::GetHistory::from_bytes(data);
    let _ = f::messages::GetMessages::from_bytes(data);
    let _ = f::messages::GetDialogs::from_bytes(data);
    let _ = f::messages::EditMessage::from_bytes(data);
    let _ = f::messages::DeleteMessages::from_bytes(data);
    let _ = f::messages::DeleteHistory::from_bytes(data);
    let _ = f::messages::SetTyping::from_bytes(data);
    let _ = f::updates::GetDifference::from_bytes(data);
});
