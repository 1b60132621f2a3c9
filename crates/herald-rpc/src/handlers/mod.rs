//! Handlers, one module per TL namespace. Each is a typed `async fn` registered by
//! constructor id in [`register`].

mod account;
mod auth;
mod help;
mod messages;
mod updates;

use crate::Dispatcher;
use grammers_tl_types::functions as f;

pub(crate) fn register(d: &mut Dispatcher) {
    d.public::<f::help::GetConfig, _, _>(help::get_config);
    d.public::<f::help::GetNearestDc, _, _>(help::get_nearest_dc);

    d.public::<f::auth::SendCode, _, _>(auth::send_code);
    d.public::<f::auth::ResendCode, _, _>(auth::resend_code);
    d.public::<f::auth::CancelCode, _, _>(auth::cancel_code);
    d.public::<f::auth::SignIn, _, _>(auth::sign_in);
    d.public::<f::auth::SignUp, _, _>(auth::sign_up);
    d.private::<f::auth::LogOut, _, _>(auth::log_out);

    d.private::<f::users::GetUsers, _, _>(account::get_users);
    d.private::<f::users::GetFullUser, _, _>(account::get_full_user);
    d.private::<f::account::UpdateUsername, _, _>(account::update_username);
    d.private::<f::account::CheckUsername, _, _>(account::check_username);
    d.private::<f::account::UpdateProfile, _, _>(account::update_profile);
    d.private::<f::contacts::ResolveUsername, _, _>(account::resolve_username);
    d.private::<f::contacts::GetContacts, _, _>(account::get_contacts);

    d.private::<f::messages::SendMessage, _, _>(messages::send_message);
    d.private::<f::messages::GetHistory, _, _>(messages::get_history);
    d.private::<f::messages::GetMessages, _, _>(messages::get_messages);
    d.private::<f::messages::GetDialogs, _, _>(messages::get_dialogs);
    d.private::<f::messages::ReadHistory, _, _>(messages::read_history);
    d.private::<f::messages::EditMessage, _, _>(messages::edit_message);
    d.private::<f::messages::DeleteMessages, _, _>(messages::delete_messages);
    d.private::<f::messages::DeleteHistory, _, _>(messages::delete_history);
    d.private::<f::messages::SetTyping, _, _>(messages::set_typing);

    d.private::<f::updates::GetState, _, _>(updates::get_state);
    d.private::<f::updates::GetDifference, _, _>(updates::get_difference);
}
