//! What an account sets on its dialogs (docs/client-compat.md §4.14): drafts synced to its
//! other sessions, pinned dialogs, and the archive folder.

use crate::bus::Event;
use crate::error::{MessageError, Result, StoreError};
use crate::messages::{validate_text, MessageService};
use crate::model::*;

/// Pinned dialogs in the main list (Telegram's `pinned_dialogs_count_max` without premium).
pub const PINNED_MAX: usize = 5;
/// Pinned dialogs in the archive (`pinned_infolder_count_max`).
pub const PINNED_IN_FOLDER_MAX: usize = 100;
/// Drafts one `getAllDrafts` answers at most.
pub const DRAFTS_MAX: usize = 500;

impl MessageService {
    async fn existing_dialog(&self, owner: UserId, peer: Peer) -> Result<Dialog> {
        self.store.dialog(owner, peer).await?.ok_or_else(|| MessageError::PeerIdInvalid.into())
    }

    /// `messages.saveDraft`: an empty text clears the draft. The other sessions are told.
    pub async fn save_draft(&self, owner: UserId, origin_key: i64, peer: Peer, draft: Option<Draft>) -> Result<()> {
        self.box_for(owner, peer).await?;
        let draft = draft.filter(|d| !d.text.is_empty());
        if let Some(d) = &draft {
            validate_text(&d.text, &d.entities)?;
            self.sends.take(owner, 1.0, self.clock.now_ms()).map_err(MessageError::FloodWait)?;
        }
        if self.store.set_draft(owner, peer, draft.clone()).await? {
            self.bus.publish(Event::Draft { user: owner, peer, draft, origin: origin_key });
        }
        Ok(())
    }

    /// A send's `clear_draft`, after the message is stored. Clearing what is not there writes
    /// nothing: official apps set the flag on most sends, and a write job would cost each a
    /// second commit to wait for. The read sees every draft whose save was answered before the
    /// send was stored (answers follow commits); requests in flight together are not ordered
    /// (clients order them with `invokeAfterMsg`). An explicit `saveDraft` with empty text
    /// always writes, behind any save queued before it.
    pub async fn clear_draft_after_send(&self, owner: UserId, origin_key: i64, peer: Peer) -> Result<()> {
        if !self.store.has_draft(owner, peer).await? {
            return Ok(());
        }
        self.save_draft(owner, origin_key, peer, None).await
    }

    /// Every draft of `owner` (`messages.getAllDrafts`).
    pub async fn drafts(&self, owner: UserId) -> Result<Vec<(Peer, Draft)>> {
        let mut all = self.store.drafts(owner).await?;
        all.truncate(DRAFTS_MAX);
        Ok(all)
    }

    /// `messages.clearAllDrafts`.
    pub async fn clear_drafts(&self, owner: UserId, origin_key: i64) -> Result<()> {
        for (peer, _) in self.store.drafts(owner).await? {
            if self.store.set_draft(owner, peer, None).await? {
                self.bus.publish(Event::Draft { user: owner, peer, draft: None, origin: origin_key });
            }
        }
        Ok(())
    }

    /// `messages.toggleDialogPin`: pinned dialogs go first in their folder, the newest pin on
    /// top; at most [`PINNED_MAX`] in the main list (`PINNED_DIALOGS_TOO_MUCH`).
    pub async fn pin_dialog(&self, owner: UserId, origin_key: i64, peer: Peer, pinned: bool) -> Result<()> {
        let d = self.existing_dialog(owner, peer).await?;
        let max = if d.folder == ARCHIVE_FOLDER { PINNED_IN_FOLDER_MAX } else { PINNED_MAX };
        let mut result = self.store.set_pinned(owner, peer, pinned, max).await;
        if matches!(result, Err(StoreError::Conflict(_))) {
            // Pins of dialogs that are gone (a channel left, a chat emptied) count in the
            // store; drop them and try once more.
            let mut dropped = false;
            for p in self.store.pinned(owner, d.folder).await? {
                if self.store.dialog(owner, p).await?.is_none() {
                    dropped |= self.store.set_pinned(owner, p, false, max).await?;
                }
            }
            if dropped {
                result = self.store.set_pinned(owner, peer, pinned, max).await;
            }
        }
        match result {
            Ok(true) => self.bus.publish(Event::DialogPinned { user: owner, peer, pinned, folder: d.folder, origin: origin_key }),
            Ok(false) => {}
            Err(StoreError::Conflict(_)) => return Err(MessageError::PinnedDialogsTooMuch.into()),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// `messages.reorderPinnedDialogs`: `order` becomes the folder's pinned dialogs, top first
    /// (dialogs `owner` does not have are left out; with `force`, pinned ones not listed are
    /// unpinned, otherwise they keep their place after the listed ones).
    pub async fn reorder_pinned(&self, owner: UserId, origin_key: i64, folder: i32, order: &[Peer], force: bool) -> Result<()> {
        let max = if folder == ARCHIVE_FOLDER { PINNED_IN_FOLDER_MAX } else { PINNED_MAX };
        let mut list: Vec<Peer> = Vec::new();
        for p in order {
            if !list.contains(p) && self.store.dialog(owner, *p).await?.is_some_and(|d| d.folder == folder) {
                list.push(*p);
            }
        }
        if !force {
            for p in self.store.pinned(owner, folder).await? {
                if !list.contains(&p) {
                    list.push(p);
                }
            }
        }
        if list.len() > max {
            return Err(MessageError::PinnedDialogsTooMuch.into());
        }
        self.store.set_pinned_order(owner, folder, &list).await?;
        self.bus.publish(Event::PinnedDialogs { user: owner, folder, order: list, origin: origin_key });
        Ok(())
    }

    /// The peers of a folder's pinned dialogs, top first.
    pub async fn pinned_peers(&self, owner: UserId, folder: i32) -> Result<Vec<Peer>> {
        Ok(self.store.pinned(owner, folder).await?)
    }

    /// `folders.editPeerFolders`: moves dialogs to the archive (1) or back (0); returns those
    /// that moved. A moved dialog loses its pin.
    pub async fn set_folders(&self, owner: UserId, origin_key: i64, moves: &[(Peer, i32)]) -> Result<Vec<(Peer, i32)>> {
        if moves.len() > crate::messages::IDS_MAX {
            return Err(MessageError::LimitInvalid.into());
        }
        let mut moved = Vec::new();
        for (peer, folder) in moves {
            if !matches!(*folder, 0 | ARCHIVE_FOLDER) {
                return Err(MessageError::FolderIdInvalid.into());
            }
            self.existing_dialog(owner, *peer).await?;
            if self.store.set_folder(owner, *peer, *folder).await? {
                moved.push((*peer, *folder));
            }
        }
        if !moved.is_empty() {
            self.bus.publish(Event::FolderPeers { user: owner, peers: moved.clone(), origin: origin_key });
        }
        Ok(moved)
    }
}
