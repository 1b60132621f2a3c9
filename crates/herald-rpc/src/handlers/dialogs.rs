//! Drafts, pinned dialogs and the archive (`herald_domain::dialogs`; client-compat §4.14).

use super::startup::input_dialog_peer;
use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::model::{Draft, Peer};
use std::sync::Arc;

pub async fn save_draft(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SaveDraft) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let reply_to = convert::reply_to_id(r.reply_to);
    let entities = convert::entities_in(&s, me, r.entities).await?;
    let draft = Draft { text: r.message, entities, reply_to, date: s.clock.now_secs() as i32 };
    s.messages.save_draft(me, ctx.auth_key_id, peer, Some(draft)).await?;
    Ok(true)
}

/// `messages.getAllDrafts`: an `updateDraftMessage` for each draft.
pub async fn get_all_drafts(s: Arc<Services>, ctx: CallCtx, _: functions::messages::GetAllDrafts) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let drafts = s.messages.drafts(me).await?;
    let updates = drafts
        .iter()
        .map(|(p, d)| {
            enums::Update::DraftMessage(types::UpdateDraftMessage { peer: convert::peer(*p), top_msg_id: None, saved_peer_id: None, draft: convert::draft(d) })
        })
        .collect();
    let users = drafts.iter().filter_map(|(p, _)| p.user()).collect();
    let groups = drafts.iter().filter_map(|(p, _)| p.group()).collect();
    super::messages::pack(&s, me, updates, users, groups).await
}

pub async fn clear_all_drafts(s: Arc<Services>, ctx: CallCtx, _: functions::messages::ClearAllDrafts) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    s.messages.clear_drafts(me, ctx.auth_key_id).await?;
    Ok(true)
}

pub async fn toggle_dialog_pin(s: Arc<Services>, ctx: CallCtx, r: functions::messages::ToggleDialogPin) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let peer = input_dialog_peer(&s, me, &r.peer).await?;
    s.messages.pin_dialog(me, ctx.auth_key_id, peer, r.pinned).await?;
    Ok(true)
}

pub async fn reorder_pinned_dialogs(s: Arc<Services>, ctx: CallCtx, r: functions::messages::ReorderPinnedDialogs) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let mut order: Vec<Peer> = Vec::with_capacity(r.order.len());
    for p in r.order.iter().take(herald_domain::dialogs::PINNED_IN_FOLDER_MAX + 1) {
        order.push(input_dialog_peer(&s, me, p).await?);
    }
    s.messages.reorder_pinned(me, ctx.auth_key_id, r.folder_id, &order, r.force).await?;
    Ok(true)
}

/// `folders.editPeerFolders`: answered with `updateFolderPeers` for what moved (at the
/// account's current pts, count 0).
pub async fn edit_peer_folders(s: Arc<Services>, ctx: CallCtx, r: functions::folders::EditPeerFolders) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let mut moves = Vec::with_capacity(r.folder_peers.len());
    for fp in r.folder_peers.iter().take(herald_domain::messages::IDS_MAX + 1) {
        let enums::InputFolderPeer::Peer(fp) = fp;
        moves.push((convert::input_peer(&s, me, &fp.peer).await?, fp.folder_id));
    }
    let moved = s.messages.set_folders(me, ctx.auth_key_id, &moves).await?;
    let pts = s.messages.pts(herald_domain::model::BoxId::User(me)).await?;
    let update = enums::Update::FolderPeers(types::UpdateFolderPeers {
        folder_peers: moved.iter().map(|(p, f)| enums::FolderPeer::Peer(types::FolderPeer { peer: convert::peer(*p), folder_id: *f })).collect(),
        pts,
        pts_count: 0,
    });
    let users = moved.iter().filter_map(|(p, _)| p.user()).collect();
    let groups = moved.iter().filter_map(|(p, _)| p.group()).collect();
    super::messages::pack(&s, me, vec![update], users, groups).await
}
