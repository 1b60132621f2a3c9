//! Handlers, one module per TL namespace. Each is a typed `async fn` registered by
//! constructor id in [`register`].

mod account;
mod auth;
mod help;
mod messages;
mod updates;

use crate::dispatch::Access::{Anyone, LoggedIn};
use crate::Dispatcher;
use grammers_tl_types::functions as f;

pub(crate) fn register(d: &mut Dispatcher) {
    d.add::<f::help::GetConfig, _, _>(Anyone, help::get_config);
    d.add::<f::help::GetNearestDc, _, _>(Anyone, help::get_nearest_dc);

    d.add::<f::auth::SendCode, _, _>(Anyone, auth::send_code);
    d.add::<f::auth::ResendCode, _, _>(Anyone, auth::resend_code);
    d.add::<f::auth::CancelCode, _, _>(Anyone, auth::cancel_code);
    d.add::<f::auth::SignIn, _, _>(Anyone, auth::sign_in);
    d.add::<f::auth::SignUp, _, _>(Anyone, auth::sign_up);
    d.add::<f::auth::LogOut, _, _>(LoggedIn, auth::log_out);

    d.add::<f::users::GetUsers, _, _>(LoggedIn, account::get_users);
    d.add::<f::users::GetFullUser, _, _>(LoggedIn, account::get_full_user);
    d.add::<f::account::UpdateUsername, _, _>(LoggedIn, account::update_username);
    d.add::<f::account::CheckUsername, _, _>(LoggedIn, account::check_username);
    d.add::<f::account::UpdateProfile, _, _>(LoggedIn, account::update_profile);
    d.add::<f::contacts::ResolveUsername, _, _>(LoggedIn, account::resolve_username);
    d.add::<f::contacts::GetContacts, _, _>(LoggedIn, account::get_contacts);

    d.add::<f::messages::SendMessage, _, _>(LoggedIn, messages::send_message);
    d.add::<f::messages::GetHistory, _, _>(LoggedIn, messages::get_history);
    d.add::<f::messages::GetMessages, _, _>(LoggedIn, messages::get_messages);
    d.add::<f::messages::GetDialogs, _, _>(LoggedIn, messages::get_dialogs);
    d.add::<f::messages::ReadHistory, _, _>(LoggedIn, messages::read_history);
    d.add::<f::messages::EditMessage, _, _>(LoggedIn, messages::edit_message);
    d.add::<f::messages::DeleteMessages, _, _>(LoggedIn, messages::delete_messages);
    d.add::<f::messages::DeleteHistory, _, _>(LoggedIn, messages::delete_history);
    d.add::<f::messages::SetTyping, _, _>(LoggedIn, messages::set_typing);

    d.add::<f::updates::GetState, _, _>(LoggedIn, updates::get_state);
    d.add::<f::updates::GetDifference, _, _>(LoggedIn, updates::get_difference);
}
