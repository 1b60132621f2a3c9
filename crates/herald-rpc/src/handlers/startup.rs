//! Calls clients make at start-up for features Herald does not have (yet): they get the
//! empty answer Telegram gives an account without them, not an error, so that TDLib,
//! Telegram Desktop and kurigram start cleanly (docs/client-compat.md §6.3).

use crate::{convert, CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::model::Peer;
use std::sync::Arc;

/// How long a client may cache "nothing to promote" and "no new terms" (seconds).
const EMPTY_FOR_SECS: i32 = 3600;

pub async fn get_app_config(_: Arc<Services>, _: CallCtx, _: functions::help::GetAppConfig) -> Result<enums::help::AppConfig, RpcError> {
    Ok(enums::help::AppConfig::Config(types::help::AppConfig { hash: 0, config: enums::Jsonvalue::JsonObject(types::JsonObject { value: vec![] }) }))
}

pub async fn get_promo_data(s: Arc<Services>, _: CallCtx, _: functions::help::GetPromoData) -> Result<enums::help::PromoData, RpcError> {
    Ok(enums::help::PromoData::Empty(types::help::PromoDataEmpty { expires: s.clock.now_secs() as i32 + EMPTY_FOR_SECS }))
}

pub async fn get_terms_of_service_update(
    s: Arc<Services>,
    _: CallCtx,
    _: functions::help::GetTermsOfServiceUpdate,
) -> Result<enums::help::TermsOfServiceUpdate, RpcError> {
    Ok(enums::help::TermsOfServiceUpdate::Empty(types::help::TermsOfServiceUpdateEmpty { expires: s.clock.now_secs() as i32 + EMPTY_FOR_SECS }))
}

/// Notification settings are not kept yet: every peer has the defaults.
pub async fn get_notify_settings(_: Arc<Services>, ctx: CallCtx, _: functions::account::GetNotifySettings) -> Result<enums::PeerNotifySettings, RpcError> {
    ctx.user()?;
    Ok(convert::notify_settings())
}

pub async fn get_content_settings(
    _: Arc<Services>,
    ctx: CallCtx,
    _: functions::account::GetContentSettings,
) -> Result<enums::account::ContentSettings, RpcError> {
    ctx.user()?;
    Ok(enums::account::ContentSettings::Settings(types::account::ContentSettings { sensitive_enabled: false, sensitive_can_change: false }))
}

pub async fn get_dialog_filters(_: Arc<Services>, ctx: CallCtx, _: functions::messages::GetDialogFilters) -> Result<enums::messages::DialogFilters, RpcError> {
    ctx.user()?;
    Ok(enums::messages::DialogFilters::Filters(types::messages::DialogFilters { tags_enabled: false, filters: vec![] }))
}

pub async fn get_available_reactions(
    _: Arc<Services>,
    ctx: CallCtx,
    _: functions::messages::GetAvailableReactions,
) -> Result<enums::messages::AvailableReactions, RpcError> {
    ctx.user()?;
    Ok(enums::messages::AvailableReactions::Reactions(types::messages::AvailableReactions { hash: 0, reactions: vec![] }))
}

/// `messages.getDialogUnreadMarks`: the dialogs the caller marked unread.
pub async fn get_dialog_unread_marks(s: Arc<Services>, ctx: CallCtx, _: functions::messages::GetDialogUnreadMarks) -> Result<Vec<enums::DialogPeer>, RpcError> {
    let me = ctx.user()?;
    Ok(s.messages.unread_marks(me).await?.into_iter().map(convert::dialog_peer).collect())
}

/// `messages.markDialogUnread`: marks a dialog unread (or clears the mark).
pub async fn mark_dialog_unread(s: Arc<Services>, ctx: CallCtx, r: functions::messages::MarkDialogUnread) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let peer = input_dialog_peer(&s, me, &r.peer).await?;
    s.messages.mark_dialog_unread(me, peer, r.unread).await?;
    Ok(true)
}

/// Top peers (frequent contacts) are not computed: the rating is off, as for a user who
/// disabled it.
pub async fn get_top_peers(_: Arc<Services>, ctx: CallCtx, _: functions::contacts::GetTopPeers) -> Result<enums::contacts::TopPeers, RpcError> {
    ctx.user()?;
    Ok(enums::contacts::TopPeers::Disabled)
}

/// History is not split across servers: one range covers it all (kurigram counts history per
/// range, through `invokeWithMessagesRange`, so none would count nothing).
pub async fn get_split_ranges(_: Arc<Services>, ctx: CallCtx, _: functions::messages::GetSplitRanges) -> Result<Vec<enums::MessageRange>, RpcError> {
    ctx.user()?;
    Ok(vec![enums::MessageRange::Range(types::MessageRange { min_id: 1, max_id: i32::MAX })])
}

/// Link previews are not generated: "no preview" (`messageMediaEmpty`), as Telegram answers
/// for text without a link.
pub async fn get_web_page_preview(
    _: Arc<Services>,
    ctx: CallCtx,
    _: functions::messages::GetWebPagePreview,
) -> Result<enums::messages::WebPagePreview, RpcError> {
    ctx.user()?;
    Ok(enums::messages::WebPagePreview::Preview(types::messages::WebPagePreview { media: enums::MessageMedia::Empty, chats: vec![], users: vec![] }))
}

/// `messages.getPeerDialogs`: the caller's dialogs with these peers (TDLib asks for the
/// self chat this way), with the account's update state.
pub async fn get_peer_dialogs(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetPeerDialogs) -> Result<enums::messages::PeerDialogs, RpcError> {
    let me = ctx.user()?;
    let mut peers = Vec::with_capacity(r.peers.len());
    for p in r.peers.iter().take(herald_domain::messages::IDS_MAX + 1) {
        if let enums::InputDialogPeer::Peer(_) = p {
            peers.push(input_dialog_peer(&s, me, p).await?);
        }
    }
    peer_dialogs(&s, me, &peers).await
}

/// `messages.getPinnedDialogs`: a folder's pinned dialogs, top first, with the state.
pub async fn get_pinned_dialogs(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetPinnedDialogs) -> Result<enums::messages::PeerDialogs, RpcError> {
    let me = ctx.user()?;
    let peers = s.messages.pinned_peers(me, r.folder_id).await?;
    peer_dialogs(&s, me, &peers).await
}

/// An `InputDialogPeer` as a peer the caller can see.
pub(crate) async fn input_dialog_peer(s: &Services, me: herald_domain::model::UserId, p: &enums::InputDialogPeer) -> Result<Peer, RpcError> {
    match p {
        enums::InputDialogPeer::Peer(p) => convert::input_peer(s, me, &p.peer).await,
        _ => Err(RpcError::bad_request("PEER_ID_INVALID")),
    }
}

async fn peer_dialogs(s: &Services, me: herald_domain::model::UserId, peers: &[Peer]) -> Result<enums::messages::PeerDialogs, RpcError> {
    // The state first: an update landing meanwhile is then at worst seen twice, never skipped.
    let st = s.messages.state(me).await?;
    let (dialogs, msgs) = s.messages.peer_dialogs(me, peers).await?;
    let super::messages::DialogsAnswer { dialogs, messages, chats, users } = super::messages::dialogs_answer(s, me, &dialogs, &msgs).await?;
    let state = super::updates::state(st.pts, s.clock.now_secs() as i32, st.unread_count);
    Ok(enums::messages::PeerDialogs::Dialogs(types::messages::PeerDialogs { dialogs, messages, chats, users, state }))
}

/// Message effects are not served: none (TDLib asks at start-up).
pub async fn get_available_effects(
    _: Arc<Services>,
    ctx: CallCtx,
    _: functions::messages::GetAvailableEffects,
) -> Result<enums::messages::AvailableEffects, RpcError> {
    ctx.user()?;
    Ok(enums::messages::AvailableEffects::Effects(types::messages::AvailableEffects { hash: 0, effects: vec![], documents: vec![] }))
}

/// No bots in the attachment menu.
pub async fn get_attach_menu_bots(_: Arc<Services>, ctx: CallCtx, _: functions::messages::GetAttachMenuBots) -> Result<enums::AttachMenuBots, RpcError> {
    ctx.user()?;
    Ok(enums::AttachMenuBots::Bots(types::AttachMenuBots { hash: 0, bots: vec![], users: vec![] }))
}

fn no_peer_colors() -> enums::help::PeerColors {
    enums::help::PeerColors::Colors(types::help::PeerColors { hash: 0, colors: vec![] })
}

/// No custom name colors: clients use their built-in ones.
pub async fn get_peer_colors(_: Arc<Services>, _: CallCtx, _: functions::help::GetPeerColors) -> Result<enums::help::PeerColors, RpcError> {
    Ok(no_peer_colors())
}

pub async fn get_peer_profile_colors(_: Arc<Services>, _: CallCtx, _: functions::help::GetPeerProfileColors) -> Result<enums::help::PeerColors, RpcError> {
    Ok(no_peer_colors())
}

/// No chat themes.
pub async fn get_chat_themes(_: Arc<Services>, ctx: CallCtx, _: functions::account::GetChatThemes) -> Result<enums::account::Themes, RpcError> {
    ctx.user()?;
    Ok(enums::account::Themes::Themes(types::account::Themes { hash: 0, themes: vec![] }))
}

/// There are no sticker sets: `STICKERSET_INVALID`, Telegram's answer for an unknown set.
pub async fn get_sticker_set(_: Arc<Services>, ctx: CallCtx, _: functions::messages::GetStickerSet) -> Result<enums::messages::StickerSet, RpcError> {
    ctx.user()?;
    Err(RpcError::bad_request("STICKERSET_INVALID"))
}
