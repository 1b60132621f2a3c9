//! Handlers, one module per TL namespace. Each is a typed `async fn` registered by
//! constructor id in [`register`].

mod account;
mod auth;
mod contacts;
mod dialogs;
mod groups;
mod help;
mod messages;
mod password;
mod startup;
mod updates;

use crate::dispatch::Access::{Anyone, LoggedIn};
use crate::Dispatcher;
use grammers_tl_types::functions as f;

pub(crate) fn register(d: &mut Dispatcher) {
    d.add::<f::help::GetConfig, _, _>(Anyone, help::get_config);
    d.add::<f::help::GetNearestDc, _, _>(Anyone, help::get_nearest_dc);
    d.add::<f::help::GetAppConfig, _, _>(Anyone, startup::get_app_config);
    d.add::<f::help::GetPromoData, _, _>(Anyone, startup::get_promo_data);
    d.add::<f::help::GetTermsOfServiceUpdate, _, _>(Anyone, startup::get_terms_of_service_update);
    d.add::<f::account::GetNotifySettings, _, _>(LoggedIn, startup::get_notify_settings);
    d.add::<f::account::GetContentSettings, _, _>(LoggedIn, startup::get_content_settings);
    d.add::<f::messages::GetDialogFilters, _, _>(LoggedIn, startup::get_dialog_filters);
    d.add::<f::messages::GetAvailableReactions, _, _>(LoggedIn, startup::get_available_reactions);
    d.add::<f::messages::GetDialogUnreadMarks, _, _>(LoggedIn, startup::get_dialog_unread_marks);
    d.add::<f::messages::MarkDialogUnread, _, _>(LoggedIn, startup::mark_dialog_unread);
    d.add::<f::contacts::GetTopPeers, _, _>(LoggedIn, startup::get_top_peers);
    d.add::<f::messages::GetSplitRanges, _, _>(LoggedIn, startup::get_split_ranges);
    d.add::<f::messages::GetWebPagePreview, _, _>(LoggedIn, startup::get_web_page_preview);
    d.add::<f::messages::GetPeerDialogs, _, _>(LoggedIn, startup::get_peer_dialogs);
    d.add::<f::messages::GetPinnedDialogs, _, _>(LoggedIn, startup::get_pinned_dialogs);
    d.add::<f::messages::SaveDraft, _, _>(LoggedIn, dialogs::save_draft);
    d.add::<f::messages::GetAllDrafts, _, _>(LoggedIn, dialogs::get_all_drafts);
    d.add::<f::messages::ClearAllDrafts, _, _>(LoggedIn, dialogs::clear_all_drafts);
    d.add::<f::messages::ToggleDialogPin, _, _>(LoggedIn, dialogs::toggle_dialog_pin);
    d.add::<f::messages::ReorderPinnedDialogs, _, _>(LoggedIn, dialogs::reorder_pinned_dialogs);
    d.add::<f::folders::EditPeerFolders, _, _>(LoggedIn, dialogs::edit_peer_folders);

    d.add::<f::auth::SendCode, _, _>(Anyone, auth::send_code);
    d.add::<f::auth::ResendCode, _, _>(Anyone, auth::resend_code);
    d.add::<f::auth::CancelCode, _, _>(Anyone, auth::cancel_code);
    d.add::<f::auth::SignIn, _, _>(Anyone, auth::sign_in);
    d.add::<f::auth::SignUp, _, _>(Anyone, auth::sign_up);
    d.add::<f::auth::LogOut, _, _>(LoggedIn, auth::log_out);
    d.add::<f::auth::CheckPassword, _, _>(Anyone, password::check_password);
    d.add::<f::auth::ExportLoginToken, _, _>(Anyone, auth::export_login_token);
    d.add::<f::auth::ImportLoginToken, _, _>(Anyone, auth::import_login_token);
    d.add::<f::auth::AcceptLoginToken, _, _>(LoggedIn, auth::accept_login_token);
    d.add::<f::auth::RequestPasswordRecovery, _, _>(Anyone, password::request_password_recovery);
    d.add::<f::auth::CheckRecoveryPassword, _, _>(Anyone, password::check_recovery_password);
    d.add::<f::auth::RecoverPassword, _, _>(Anyone, password::recover_password);
    d.add::<f::account::GetPassword, _, _>(Anyone, password::get_password);
    d.add::<f::account::GetPasswordSettings, _, _>(LoggedIn, password::get_password_settings);
    d.add::<f::account::UpdatePasswordSettings, _, _>(LoggedIn, password::update_password_settings);
    d.add::<f::account::ConfirmPasswordEmail, _, _>(LoggedIn, password::confirm_password_email);
    d.add::<f::account::ResendPasswordEmail, _, _>(LoggedIn, password::resend_password_email);
    d.add::<f::account::CancelPasswordEmail, _, _>(LoggedIn, password::cancel_password_email);

    d.add::<f::users::GetUsers, _, _>(LoggedIn, account::get_users);
    d.add::<f::users::GetFullUser, _, _>(LoggedIn, account::get_full_user);
    d.add::<f::account::UpdateUsername, _, _>(LoggedIn, account::update_username);
    d.add::<f::account::CheckUsername, _, _>(LoggedIn, account::check_username);
    d.add::<f::account::UpdateProfile, _, _>(LoggedIn, account::update_profile);
    d.add::<f::account::GetAuthorizations, _, _>(LoggedIn, account::get_authorizations);
    d.add::<f::account::ResetAuthorization, _, _>(LoggedIn, account::reset_authorization);
    d.add::<f::auth::ResetAuthorizations, _, _>(LoggedIn, account::reset_authorizations);
    d.add::<f::contacts::ResolveUsername, _, _>(LoggedIn, account::resolve_username);
    d.add::<f::account::UpdateStatus, _, _>(LoggedIn, account::update_status);
    d.add::<f::contacts::GetContacts, _, _>(LoggedIn, contacts::get_contacts);
    d.add::<f::contacts::GetContactIds, _, _>(LoggedIn, contacts::get_contact_ids);
    d.add::<f::contacts::GetStatuses, _, _>(LoggedIn, contacts::get_statuses);
    d.add::<f::contacts::ImportContacts, _, _>(LoggedIn, contacts::import_contacts);
    d.add::<f::contacts::AddContact, _, _>(LoggedIn, contacts::add_contact);
    d.add::<f::contacts::DeleteContacts, _, _>(LoggedIn, contacts::delete_contacts);
    d.add::<f::contacts::DeleteByPhones, _, _>(LoggedIn, contacts::delete_by_phones);
    d.add::<f::contacts::Search, _, _>(LoggedIn, contacts::search);
    d.add::<f::contacts::ResolvePhone, _, _>(LoggedIn, contacts::resolve_phone);
    d.add::<f::contacts::ResetSaved, _, _>(LoggedIn, contacts::reset_saved);
    d.add::<f::contacts::GetSaved, _, _>(LoggedIn, contacts::get_saved);
    d.add::<f::contacts::Block, _, _>(LoggedIn, account::block);
    d.add::<f::contacts::Unblock, _, _>(LoggedIn, account::unblock);
    d.add::<f::contacts::GetBlocked, _, _>(LoggedIn, account::get_blocked);

    d.add::<f::messages::SendMessage, _, _>(LoggedIn, messages::send_message);
    d.add::<f::messages::ForwardMessages, _, _>(LoggedIn, messages::forward_messages);
    d.add::<f::messages::SendReaction, _, _>(LoggedIn, messages::send_reaction);
    d.add::<f::messages::GetMessagesReactions, _, _>(LoggedIn, messages::get_messages_reactions);
    d.add::<f::messages::GetHistory, _, _>(LoggedIn, messages::get_history);
    d.add::<f::messages::Search, _, _>(LoggedIn, messages::search);
    d.add::<f::messages::SearchGlobal, _, _>(LoggedIn, messages::search_global);
    d.add::<f::messages::GetMessages, _, _>(LoggedIn, messages::get_messages);
    d.add::<f::messages::GetDialogs, _, _>(LoggedIn, messages::get_dialogs);
    d.add::<f::messages::ReadHistory, _, _>(LoggedIn, messages::read_history);
    d.add::<f::messages::EditMessage, _, _>(LoggedIn, messages::edit_message);
    d.add::<f::messages::DeleteMessages, _, _>(LoggedIn, messages::delete_messages);
    d.add::<f::messages::DeleteHistory, _, _>(LoggedIn, messages::delete_history);
    d.add::<f::messages::SetTyping, _, _>(LoggedIn, messages::set_typing);

    d.add::<f::messages::GetMessagesViews, _, _>(LoggedIn, messages::get_messages_views);

    d.add::<f::messages::CreateChat, _, _>(LoggedIn, groups::create_chat);
    d.add::<f::messages::AddChatUser, _, _>(LoggedIn, groups::add_chat_user);
    d.add::<f::messages::DeleteChatUser, _, _>(LoggedIn, groups::delete_chat_user);
    d.add::<f::messages::EditChatTitle, _, _>(LoggedIn, groups::edit_chat_title);
    d.add::<f::messages::EditChatAbout, _, _>(LoggedIn, groups::edit_chat_about);
    d.add::<f::messages::EditChatAdmin, _, _>(LoggedIn, groups::edit_chat_admin);
    d.add::<f::messages::EditChatDefaultBannedRights, _, _>(LoggedIn, groups::edit_chat_default_banned_rights);
    d.add::<f::messages::GetChats, _, _>(LoggedIn, groups::get_chats);
    d.add::<f::messages::GetCommonChats, _, _>(LoggedIn, groups::get_common_chats);
    d.add::<f::messages::GetFullChat, _, _>(LoggedIn, groups::get_full_chat);
    d.add::<f::messages::MigrateChat, _, _>(LoggedIn, groups::migrate_chat);
    d.add::<f::messages::UpdatePinnedMessage, _, _>(LoggedIn, groups::update_pinned_message);
    d.add::<f::messages::UnpinAllMessages, _, _>(LoggedIn, groups::unpin_all_messages);
    d.add::<f::messages::ExportChatInvite, _, _>(LoggedIn, groups::export_chat_invite);
    d.add::<f::messages::CheckChatInvite, _, _>(LoggedIn, groups::check_chat_invite);
    d.add::<f::messages::ImportChatInvite, _, _>(LoggedIn, groups::import_chat_invite);
    d.add::<f::messages::GetExportedChatInvites, _, _>(LoggedIn, groups::get_exported_chat_invites);
    d.add::<f::messages::EditExportedChatInvite, _, _>(LoggedIn, groups::edit_exported_chat_invite);
    d.add::<f::messages::HideChatJoinRequest, _, _>(LoggedIn, groups::hide_chat_join_request);
    d.add::<f::messages::GetChatInviteImporters, _, _>(LoggedIn, groups::get_chat_invite_importers);

    d.add::<f::channels::CreateChannel, _, _>(LoggedIn, groups::create_channel);
    d.add::<f::channels::InviteToChannel, _, _>(LoggedIn, groups::invite_to_channel);
    d.add::<f::channels::JoinChannel, _, _>(LoggedIn, groups::join_channel);
    d.add::<f::channels::LeaveChannel, _, _>(LoggedIn, groups::leave_channel);
    d.add::<f::channels::GetChannels, _, _>(LoggedIn, groups::get_channels);
    d.add::<f::channels::GetFullChannel, _, _>(LoggedIn, groups::get_full_channel);
    d.add::<f::channels::GetParticipants, _, _>(LoggedIn, groups::get_participants);
    d.add::<f::channels::GetParticipant, _, _>(LoggedIn, groups::get_participant);
    d.add::<f::channels::EditAdmin, _, _>(LoggedIn, groups::edit_admin);
    d.add::<f::channels::EditBanned, _, _>(LoggedIn, groups::edit_banned);
    d.add::<f::channels::EditTitle, _, _>(LoggedIn, groups::edit_title);
    d.add::<f::channels::DeleteChannel, _, _>(LoggedIn, groups::delete_channel);
    d.add::<f::channels::DeleteMessages, _, _>(LoggedIn, groups::delete_channel_messages);
    d.add::<f::channels::ReadHistory, _, _>(LoggedIn, groups::read_channel_history);
    d.add::<f::channels::GetMessages, _, _>(LoggedIn, groups::get_channel_messages);
    d.add::<f::channels::ToggleSignatures, _, _>(LoggedIn, groups::toggle_signatures);
    d.add::<f::channels::ToggleSlowMode, _, _>(LoggedIn, groups::toggle_slow_mode);
    d.add::<f::channels::CheckUsername, _, _>(LoggedIn, groups::check_username);
    d.add::<f::channels::UpdateUsername, _, _>(LoggedIn, groups::update_username);
    d.add::<f::updates::GetChannelDifference, _, _>(LoggedIn, groups::channel_difference);

    d.add::<f::updates::GetState, _, _>(LoggedIn, updates::get_state);
    d.add::<f::updates::GetDifference, _, _>(LoggedIn, updates::get_difference);
}
