//! Basic groups, supergroups and broadcast channels: creation, membership, rights, invite
//! links and the service messages each change leaves (Telegram's rules and error names;
//! docs/client-compat.md §4.7). Messages themselves go through [`MessageService`].

use crate::accounts::valid_username;
use crate::bus::{Event, EventBus, GroupChange};
use crate::clock::{random_u64, Clock};
use crate::error::{AccountError, GroupError, Result, StoreError};
use crate::limits::{FloodTable, Limiter};
use crate::messages::{MessageService, Sent};
use crate::model::*;
use crate::store::{AccountStore, BoxOp, GroupStore};
use std::sync::Arc;

/// Members of a basic group at most (Telegram's `chat_size_max`).
pub const BASIC_GROUP_MAX: i32 = 200;
/// Members of a supergroup at most (`megagroup_size_max`); broadcast channels are unlimited.
pub const SUPERGROUP_MAX: i32 = 200_000;
pub const ADMINS_MAX: i32 = 50;
/// Titles are cut to this many characters; abouts longer than this are refused.
pub const TITLE_MAX: usize = 128;
pub const ABOUT_MAX: usize = 255;
pub const RANK_MAX: usize = 16;
/// The slow-mode intervals Telegram offers.
pub const SLOWMODE_SECONDS: [i32; 7] = [0, 10, 30, 60, 300, 900, 3600];
/// Users one invite call may add.
pub const INVITE_BATCH_MAX: usize = 200;
pub const PARTICIPANTS_LIMIT_MAX: i32 = 200;
/// Characters of a member search that are used.
pub const SEARCH_MAX: usize = 64;

pub struct GroupService {
    groups: Arc<dyn GroupStore>,
    accounts: Arc<dyn AccountStore>,
    messages: Arc<MessageService>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    creations: Limiter<UserId>,
    links: Limiter<UserId>,
}

/// What a group change answers with: the actor's service-message update (if one was
/// written) and the group as it is now.
#[derive(Clone, Debug)]
pub struct Changed {
    pub group: Group,
    pub sent: Option<Sent>,
}

/// What `messages.checkChatInvite` shows.
#[derive(Clone, Debug)]
pub enum InviteCheck {
    Already(Group),
    Invite { group: Group, invite: Invite },
}

fn clean_title(title: &str) -> Result<String> {
    let t = title.trim();
    if !crate::text::has_visible(t) {
        return Err(GroupError::ChatTitleEmpty.into());
    }
    Ok(t.chars().take(TITLE_MAX).collect())
}

impl GroupService {
    pub fn new(
        groups: Arc<dyn GroupStore>,
        accounts: Arc<dyn AccountStore>,
        messages: Arc<MessageService>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_limits(groups, accounts, messages, bus, clock, &FloodTable::default())
    }

    /// With the `group_creations` and `invite_links` rows of `limits`.
    pub fn with_limits(
        groups: Arc<dyn GroupStore>,
        accounts: Arc<dyn AccountStore>,
        messages: Arc<MessageService>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        limits: &FloodTable,
    ) -> Self {
        Self { groups, accounts, messages, bus, clock, creations: Limiter::new(limits.group_creations), links: Limiter::new(limits.invite_links) }
    }

    /// Spends one of `who`'s group creations, or FLOOD_WAIT_X.
    fn spend_creation(&self, who: UserId) -> Result<()> {
        Ok(self.creations.take(who, 1.0, self.clock.now_ms()).map_err(GroupError::FloodWait)?)
    }

    /// Spends one of `who`'s invite-link and join-request budget, or FLOOD_WAIT_X.
    fn spend_link(&self, who: UserId) -> Result<()> {
        Ok(self.links.take(who, 1.0, self.clock.now_ms()).map_err(GroupError::FloodWait)?)
    }

    fn now(&self) -> i32 {
        self.clock.now_secs() as i32
    }

    /// Tells `user`'s sessions a group changed for them.
    fn notify(&self, user: UserId, g: &Group, change: GroupChange) {
        self.bus.publish(Event::Group { user, group: g.id, channel: g.kind.is_channel(), change });
    }

    async fn group(&self, id: GroupId) -> Result<Group> {
        let g = self.groups.group(id).await?.ok_or(GroupError::ChannelInvalid)?;
        Ok(g)
    }

    /// The group and the caller's membership, which must be current.
    async fn as_member(&self, id: GroupId, user: UserId) -> Result<(Group, Member)> {
        let g = self.group(id).await?;
        let m = self.groups.member(id, user).await?.filter(|m| m.role.is_member());
        match m {
            Some(m) if !g.deleted => Ok((g, m)),
            _ if g.kind.is_channel() => Err(GroupError::ChannelPrivate.into()),
            _ => Err(GroupError::ChatWriteForbidden.into()),
        }
    }

    /// The caller must hold admin right `bit` (creators hold all). Basic groups: members may
    /// change info and invite unless the group's default rights forbid it.
    async fn with_right(&self, id: GroupId, user: UserId, bit: u32) -> Result<(Group, Member)> {
        let (g, m) = self.as_member(id, user).await?;
        let now = self.now();
        let ok = match m.role {
            Role::Creator => true,
            Role::Admin => m.admin_rights.has(bit),
            _ if g.kind != GroupKind::Broadcast => {
                let banned_bit = match bit {
                    AdminRights::CHANGE_INFO => Some(BannedRights::CHANGE_INFO),
                    AdminRights::INVITE_USERS => Some(BannedRights::INVITE_USERS),
                    AdminRights::PIN_MESSAGES => Some(BannedRights::PIN_MESSAGES),
                    _ => None,
                };
                // Basic groups and supergroups: what the defaults leave open.
                banned_bit.is_some_and(|b| !g.default_banned.forbids(b, now) && !m.banned.forbids(b, now))
                    && (g.kind == GroupKind::Basic || bit == AdminRights::INVITE_USERS)
            }
            _ => false,
        };
        if !ok {
            return Err(GroupError::ChatAdminRequired.into());
        }
        Ok((g, m))
    }

    async fn members_of(&self, g: &Group) -> Result<Vec<UserId>> {
        Ok(if g.kind.is_channel() { vec![] } else { self.groups.member_ids(g.id).await? })
    }

    async fn service(&self, g: &Group, actor: UserId, action: Action, origin_key: Option<i64>) -> Result<Sent> {
        let members = self.members_of(g).await?;
        self.messages.post_service(g, actor, action, &members, None, origin_key).await
    }

    // ---- creation ----------------------------------------------------------------------

    /// `messages.createChat`: a basic group of the creator and `users`.
    pub async fn create_chat(&self, creator: UserId, origin_key: i64, title: &str, users: &[UserId]) -> Result<Changed> {
        let title = clean_title(title)?;
        let mut users: Vec<UserId> = users.iter().copied().filter(|u| *u != creator).collect();
        users.sort();
        users.dedup();
        if users.len() as i32 + 1 > BASIC_GROUP_MAX {
            return Err(GroupError::UsersTooMuch.into());
        }
        self.spend_creation(creator)?;
        let now = self.now();
        let mut members = vec![Member::new(GroupId(0), creator, Role::Creator, creator, now)];
        members.extend(users.iter().map(|u| Member::new(GroupId(0), *u, Role::Member, creator, now)));
        let g = self.groups.create_group(NewGroup { kind: GroupKind::Basic, title: title.clone(), about: String::new(), creator, date: now }, members).await?;
        let all: Vec<i64> = std::iter::once(creator).chain(users.iter().copied()).map(|u| u.0).collect();
        let sent = self.service(&g, creator, Action::ChatCreate { title, users: all }, Some(origin_key)).await?;
        Ok(Changed { group: g, sent: Some(sent) })
    }

    /// `channels.createChannel`: a supergroup (`megagroup`) or a broadcast channel.
    pub async fn create_channel(&self, creator: UserId, origin_key: i64, title: &str, about: &str, broadcast: bool) -> Result<Changed> {
        let title = clean_title(title)?;
        if about.chars().count() > ABOUT_MAX {
            return Err(GroupError::ChatAboutTooLong.into());
        }
        self.spend_creation(creator)?;
        let now = self.now();
        let kind = if broadcast { GroupKind::Broadcast } else { GroupKind::Megagroup };
        let members = vec![Member::new(GroupId(0), creator, Role::Creator, creator, now)];
        let g = self.groups.create_group(NewGroup { kind, title: title.clone(), about: about.to_string(), creator, date: now }, members).await?;
        self.notify(creator, &g, GroupChange::Joined);
        let sent = self.service(&g, creator, Action::ChannelCreate { title }, Some(origin_key)).await?;
        Ok(Changed { group: g, sent: Some(sent) })
    }

    // ---- membership --------------------------------------------------------------------

    /// Adds users (basic groups: `addChatUser`; channels: `inviteToChannel`). Users already
    /// in, and users whose privacy settings do not let the actor add them, are skipped (one
    /// user alone: `USER_ALREADY_PARTICIPANT`, `USER_PRIVACY_RESTRICTED`); a kicked user is
    /// let back in by an admin. Service messages in groups,
    /// none in broadcast channels.
    pub async fn add_members(&self, actor: UserId, origin_key: i64, id: GroupId, users: &[UserId]) -> Result<Changed> {
        if users.len() > INVITE_BATCH_MAX {
            return Err(GroupError::UsersTooMuch.into());
        }
        let (g, me) = self.with_right(id, actor, AdminRights::INVITE_USERS).await?;
        let now = self.now();
        let max = match g.kind {
            GroupKind::Basic => BASIC_GROUP_MAX,
            GroupKind::Megagroup => SUPERGROUP_MAX,
            GroupKind::Broadcast => i32::MAX,
        };
        // Who lets the actor add them (`ChatInvite` privacy): one read for all.
        let seen = self.accounts.users_seen_by(actor, users).await?;
        let may_add = |u: UserId| {
            seen.iter().find(|s| s.user.id == u).is_some_and(|s| {
                let viewer = crate::privacy::Viewer { id: actor, contact: s.has_viewer, common_chats: &[] };
                s.user.privacy.allows(crate::privacy::PrivacyKey::ChatInvite, u, viewer)
            })
        };
        let mut added = Vec::new();
        for u in users {
            if !may_add(*u) {
                if users.len() == 1 {
                    return Err(GroupError::UserPrivacyRestricted.into());
                }
                continue;
            }
            let old = self.groups.member(id, *u).await?;
            match old.as_ref().map(|m| m.role) {
                Some(r) if r.is_member() => {
                    if users.len() == 1 {
                        return Err(GroupError::UserAlreadyParticipant.into());
                    }
                    continue;
                }
                // Only an admin may let a kicked user back in.
                Some(Role::Kicked) if !me.role.is_admin() => return Err(GroupError::UserBannedInChannel.into()),
                _ => {}
            }
            if g.participants_count + added.len() as i32 >= max {
                return Err(GroupError::UsersTooMuch.into());
            }
            self.groups.set_member(Member::new(id, *u, Role::Member, actor, now)).await?;
            added.push(*u);
        }
        let g = self.group(id).await?;
        for u in &added {
            self.notify(*u, &g, GroupChange::Joined);
        }
        let sent = if added.is_empty() || g.kind == GroupKind::Broadcast {
            None
        } else {
            Some(self.service(&g, actor, Action::ChatAddUser { users: added.iter().map(|u| u.0).collect() }, Some(origin_key)).await?)
        };
        Ok(Changed { group: g, sent })
    }

    /// `channels.joinChannel`: public channels, or any channel for a user with a pending
    /// approval already given (see [`GroupService::approve`]).
    pub async fn join(&self, user: UserId, origin_key: i64, id: GroupId) -> Result<Changed> {
        let g = self.group(id).await?;
        if g.deleted || !g.kind.is_channel() {
            return Err(GroupError::ChannelPrivate.into());
        }
        let old = self.groups.member(id, user).await?;
        match old.as_ref().map(|m| m.role) {
            Some(r) if r.is_member() => return Err(GroupError::UserAlreadyParticipant.into()),
            Some(Role::Kicked) => return Err(GroupError::UserBannedInChannel.into()),
            _ => {}
        }
        if g.username.is_none() {
            return Err(GroupError::ChannelPrivate.into());
        }
        self.enter(&g, user, user, origin_key, None).await
    }

    /// Makes `user` a member and leaves the service message a join leaves.
    async fn enter(&self, g: &Group, user: UserId, actor: UserId, origin_key: i64, action: Option<Action>) -> Result<Changed> {
        let max = match g.kind {
            GroupKind::Basic => BASIC_GROUP_MAX,
            GroupKind::Megagroup => SUPERGROUP_MAX,
            GroupKind::Broadcast => i32::MAX,
        };
        if g.participants_count >= max {
            return Err(GroupError::UsersTooMuch.into());
        }
        self.groups.set_member(Member::new(g.id, user, Role::Member, actor, self.now())).await?;
        let g = self.group(g.id).await?;
        self.notify(user, &g, GroupChange::Joined);
        let sent = if g.kind == GroupKind::Broadcast {
            None
        } else {
            let action = action.unwrap_or(Action::ChatAddUser { users: vec![user.0] });
            Some(self.service(&g, user, action, Some(origin_key)).await?)
        };
        Ok(Changed { group: g, sent })
    }

    /// Removes a member: themselves (leave), or another as an admin with the ban right (basic
    /// groups: the creator, an admin, or whoever added them).
    pub async fn remove_member(&self, actor: UserId, origin_key: i64, id: GroupId, user: UserId, kick: bool) -> Result<Changed> {
        let g = self.group(id).await?;
        let target = self.groups.member(id, user).await?.filter(|m| m.role.is_member()).ok_or(GroupError::UserNotParticipant)?;
        if actor != user {
            let (_, me) = self.as_member(id, actor).await?;
            let may = match me.role {
                Role::Creator => true,
                Role::Admin => (me.admin_rights.has(AdminRights::BAN_USERS) || g.kind == GroupKind::Basic) && !target.role.is_admin(),
                _ => g.kind == GroupKind::Basic && target.actor == actor && !target.role.is_admin(),
            };
            if !may {
                return Err(GroupError::ChatAdminRequired.into());
            }
        }
        // The service message first, so that the one removed sees it too (basic groups).
        let sent =
            if g.kind == GroupKind::Broadcast { None } else { Some(self.service(&g, actor, Action::ChatDeleteUser { user: user.0 }, Some(origin_key)).await?) };
        let role = if kick && actor != user { Role::Kicked } else { Role::Left };
        let mut m = Member::new(id, user, role, actor, self.now());
        if role == Role::Kicked {
            m.banned = BannedRights { bits: BannedRights::VIEW_MESSAGES | BannedRights::SEND_MESSAGES, until: 0 };
        }
        self.groups.set_member(m).await?;
        let g = self.group(id).await?;
        self.notify(user, &g, GroupChange::Left);
        Ok(Changed { group: g, sent })
    }

    /// `channels.editBanned`: restrict (`banned` without `VIEW_MESSAGES`), kick (with it), or
    /// lift (no bits). Admins are changed only by the creator.
    pub async fn edit_banned(&self, actor: UserId, origin_key: i64, id: GroupId, user: UserId, banned: BannedRights) -> Result<Changed> {
        let (g, me) = self.with_right(id, actor, AdminRights::BAN_USERS).await?;
        if user == actor {
            return Err(GroupError::UserAdminInvalid.into());
        }
        let old = self.groups.member(id, user).await?;
        if let Some(o) = &old {
            if o.role == Role::Creator || (o.role == Role::Admin && me.role != Role::Creator) {
                return Err(GroupError::UserAdminInvalid.into());
            }
        }
        let was_member = old.as_ref().is_some_and(|m| m.role.is_member());
        if banned.bits & BannedRights::VIEW_MESSAGES != 0 {
            if was_member {
                return self.remove_member(actor, origin_key, id, user, true).await;
            }
            let mut m = Member::new(id, user, Role::Kicked, actor, self.now());
            m.banned = banned;
            self.groups.set_member(m).await?;
            return Ok(Changed { group: self.group(id).await?, sent: None });
        }
        let role = match (banned.bits != 0, was_member) {
            (true, true) => Role::Restricted,
            (false, true) => Role::Member,
            // Lifting a kick leaves the user out but free to come back.
            (_, false) => Role::Left,
        };
        let mut m = old.unwrap_or_else(|| Member::new(id, user, role, actor, self.now()));
        m.role = role;
        m.banned = if role == Role::Restricted { banned } else { BannedRights::default() };
        m.admin_rights = AdminRights::default();
        m.actor = actor;
        self.groups.set_member(m).await?;
        let g2 = self.group(id).await?;
        self.notify(user, &g2, GroupChange::Edited);
        let _ = g;
        Ok(Changed { group: g2, sent: None })
    }

    /// `channels.editAdmin` / `messages.editChatAdmin`: promote with rights and a rank, or
    /// demote (no rights). Only the creator, or an admin with the add-admins right.
    pub async fn edit_admin(&self, actor: UserId, id: GroupId, user: UserId, rights: AdminRights, rank: Option<String>) -> Result<Changed> {
        let (g, me) = self.as_member(id, actor).await?;
        if !(me.role == Role::Creator || (me.role == Role::Admin && me.admin_rights.has(AdminRights::ADD_ADMINS))) {
            return Err(GroupError::ChatAdminRequired.into());
        }
        if rank.as_ref().is_some_and(|r| r.chars().count() > RANK_MAX) {
            return Err(GroupError::AdminRankInvalid.into());
        }
        let target = self.groups.member(id, user).await?.filter(|m| m.role.is_member()).ok_or(GroupError::UserNotParticipant)?;
        if target.role == Role::Creator {
            // The creator keeps every right; only the rank may change.
            let mut t = target;
            t.rank = rank;
            self.groups.set_member(t).await?;
            return Ok(Changed { group: g, sent: None });
        }
        if target.role == Role::Admin && target.actor != actor && me.role != Role::Creator {
            return Err(GroupError::UserAdminInvalid.into());
        }
        // An admin grants only rights they hold.
        let rights = if me.role == Role::Creator { rights } else { AdminRights(rights.0 & me.admin_rights.0) };
        let mut t = target.clone();
        if rights.0 == 0 {
            t.role = Role::Member;
            t.admin_rights = AdminRights::default();
            t.rank = None;
        } else {
            if target.role != Role::Admin && g.admins_count >= ADMINS_MAX {
                return Err(GroupError::AdminsTooMuch.into());
            }
            t.role = Role::Admin;
            t.admin_rights = rights;
            t.rank = rank;
            t.banned = BannedRights::default();
        }
        t.actor = actor;
        self.groups.set_member(t).await?;
        let g = self.group(id).await?;
        self.notify(user, &g, GroupChange::Edited);
        Ok(Changed { group: g, sent: None })
    }

    // ---- description -------------------------------------------------------------------

    pub async fn edit_title(&self, actor: UserId, origin_key: i64, id: GroupId, title: &str) -> Result<Changed> {
        let title = clean_title(title)?;
        let (mut g, _) = self.with_right(id, actor, AdminRights::CHANGE_INFO).await?;
        if g.title == title {
            return Err(GroupError::ChatNotModified.into());
        }
        g.title = title.clone();
        self.groups.update_group(&g).await?;
        let g = self.group(id).await?;
        let sent = self.service(&g, actor, Action::ChatEditTitle { title }, Some(origin_key)).await?;
        Ok(Changed { group: g, sent: Some(sent) })
    }

    /// `messages.editChatPhoto` / `channels.editPhoto`: a new photo (a stored photo the caller
    /// may use) or none, announced with a service message as a title change is.
    pub async fn edit_photo(&self, actor: UserId, origin_key: i64, id: GroupId, photo: Option<FileMeta>) -> Result<Changed> {
        let (mut g, _) = self.with_right(id, actor, AdminRights::CHANGE_INFO).await?;
        let new = photo.as_ref().map(|p| p.id);
        if g.photo_id == new {
            return Err(GroupError::ChatNotModified.into());
        }
        g.photo_id = new;
        self.groups.update_group(&g).await?;
        let g = self.group(id).await?;
        let action = match photo {
            Some(photo) => Action::ChatEditPhoto { photo },
            None => Action::ChatDeletePhoto,
        };
        let sent = self.service(&g, actor, action, Some(origin_key)).await?;
        Ok(Changed { group: g, sent: Some(sent) })
    }

    pub async fn edit_about(&self, actor: UserId, id: GroupId, about: &str) -> Result<Group> {
        if about.chars().count() > ABOUT_MAX {
            return Err(GroupError::ChatAboutTooLong.into());
        }
        let (mut g, _) = self.with_right(id, actor, AdminRights::CHANGE_INFO).await?;
        if g.about == about {
            return Err(GroupError::ChatAboutNotModified.into());
        }
        g.about = about.to_string();
        self.groups.update_group(&g).await?;
        self.group(id).await
    }

    /// `editChatDefaultBannedRights`: what members may do by default.
    pub async fn edit_default_banned(&self, actor: UserId, id: GroupId, banned: BannedRights) -> Result<Group> {
        let (mut g, _) = self.with_right(id, actor, AdminRights::BAN_USERS).await?;
        if g.default_banned == banned {
            return Err(GroupError::ChatNotModified.into());
        }
        g.default_banned = banned;
        self.groups.update_group(&g).await?;
        self.group(id).await
    }

    pub async fn toggle_signatures(&self, actor: UserId, id: GroupId, on: bool) -> Result<Group> {
        let (mut g, _) = self.with_right(id, actor, AdminRights::CHANGE_INFO).await?;
        if g.signatures == on {
            return Err(GroupError::ChatNotModified.into());
        }
        g.signatures = on;
        self.groups.update_group(&g).await?;
        self.group(id).await
    }

    pub async fn toggle_slowmode(&self, actor: UserId, id: GroupId, seconds: i32) -> Result<Group> {
        if !SLOWMODE_SECONDS.contains(&seconds) {
            return Err(GroupError::SecondsInvalid.into());
        }
        let (mut g, _) = self.with_right(id, actor, AdminRights::BAN_USERS).await?;
        if g.kind != GroupKind::Megagroup {
            return Err(GroupError::ChannelInvalid.into());
        }
        if g.slowmode_seconds == seconds {
            return Err(GroupError::ChatNotModified.into());
        }
        g.slowmode_seconds = seconds;
        self.groups.update_group(&g).await?;
        self.group(id).await
    }

    /// `channels.checkUsername`: free for this channel to take.
    pub async fn check_username(&self, actor: UserId, id: GroupId, name: &str) -> Result<bool> {
        self.with_right(id, actor, AdminRights::CHANGE_INFO).await?;
        if !valid_username(name) {
            return Err(AccountError::UsernameInvalid.into());
        }
        let user = self.accounts.user_by_username(name).await?;
        let group = self.groups.group_by_username(name).await?;
        Ok(user.is_none() && group.is_none_or(|g| g.id == id))
    }

    /// `channels.updateUsername`: the creator makes the channel public (or private with "").
    pub async fn update_username(&self, actor: UserId, id: GroupId, name: &str) -> Result<Group> {
        let (mut g, me) = self.as_member(id, actor).await?;
        if me.role != Role::Creator {
            return Err(GroupError::ChatAdminRequired.into());
        }
        if !g.kind.is_channel() {
            return Err(GroupError::ChannelInvalid.into());
        }
        let new = (!name.is_empty()).then(|| name.to_string());
        if new.as_deref().is_some_and(|n| !valid_username(n)) {
            return Err(AccountError::UsernameInvalid.into());
        }
        if g.username == new {
            return Err(AccountError::UsernameNotModified.into());
        }
        if let Some(n) = &new {
            if self.accounts.user_by_username(n).await?.is_some() {
                return Err(AccountError::UsernameOccupied.into());
            }
        }
        g.username = new;
        match self.groups.update_group(&g).await {
            Err(StoreError::Conflict(_)) => return Err(AccountError::UsernameOccupied.into()),
            other => other?,
        }
        self.group(id).await
    }

    /// `channels.deleteChannel`: the creator only; members lose it at once.
    pub async fn delete_channel(&self, actor: UserId, id: GroupId) -> Result<Group> {
        let (mut g, me) = self.as_member(id, actor).await?;
        if me.role != Role::Creator {
            return Err(GroupError::ChatAdminRequired.into());
        }
        g.deleted = true;
        g.username = None;
        self.groups.update_group(&g).await?;
        let mut offset = 0;
        loop {
            let (page, _) = self.groups.members(id, &MemberFilter::Recent, offset, 1000).await?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as i32;
            for m in page {
                self.notify(m.user, &g, GroupChange::Left);
            }
        }
        Ok(g)
    }

    /// `messages.updatePinnedMessage` in a group: admins with the pin right (basic groups:
    /// members too, unless forbidden). Leaves a pin service message unless `silent` or
    /// unpinning.
    pub async fn pin(&self, actor: UserId, origin_key: i64, id: GroupId, msg_id: i32, unpin: bool, silent: bool) -> Result<Option<Sent>> {
        let (mut g, _) = self.with_right(id, actor, AdminRights::PIN_MESSAGES).await?;
        g.pinned_msg_id = if unpin { None } else { Some(msg_id) };
        if g.kind.is_channel() && !unpin && self.messages.messages_by_ids(BoxId::Channel(id), &[msg_id]).await?.is_empty() {
            return Err(crate::error::MessageError::MessageIdInvalid.into());
        }
        self.groups.update_group(&g).await?;
        if g.kind.is_channel() {
            let ops = vec![(BoxId::Channel(id), BoxOp::Pin { peer: g.peer(), ids: vec![msg_id], pinned: !unpin })];
            self.messages.apply(ops, Some((actor, origin_key))).await?;
        }
        let members = self.members_of(&g).await?;
        for m in &members {
            self.notify(*m, &g, GroupChange::Edited);
        }
        if unpin || silent {
            return Ok(None);
        }
        Ok(Some(self.messages.post_service(&g, actor, Action::PinMessage, &members, Some(msg_id), Some(origin_key)).await?))
    }

    // ---- migration ---------------------------------------------------------------------

    /// `messages.migrateChat`: the creator turns a basic group into a supergroup. The members
    /// move with their roles; the old group keeps its history, points at the new one and
    /// takes no more messages.
    pub async fn migrate(&self, actor: UserId, origin_key: i64, id: GroupId) -> Result<(Group, Group)> {
        let (mut chat, me) = self.as_member(id, actor).await?;
        if me.role != Role::Creator || chat.kind != GroupKind::Basic {
            return Err(GroupError::ChatAdminRequired.into());
        }
        if chat.migrated_to.is_some() {
            return Err(GroupError::ChatMigrated.into());
        }
        let now = self.now();
        let (members, _) = self.groups.members(id, &MemberFilter::Recent, 0, BASIC_GROUP_MAX + 1).await?;
        let moved: Vec<Member> = members.iter().map(|m| Member { group: GroupId(0), read_inbox_max_id: 0, last_post: 0, ..m.clone() }).collect();
        let mut channel = self
            .groups
            .create_group(
                NewGroup { kind: GroupKind::Megagroup, title: chat.title.clone(), about: chat.about.clone(), creator: chat.creator, date: now },
                moved,
            )
            .await?;
        channel.migrated_from = Some(id);
        self.groups.update_group(&channel).await?;
        let member_ids: Vec<UserId> = members.iter().map(|m| m.user).collect();
        self.messages.post_service(&chat, actor, Action::ChatMigrateTo { channel: channel.id.0 }, &member_ids, None, Some(origin_key)).await?;
        chat.migrated_to = Some(channel.id);
        self.groups.update_group(&chat).await?;
        let channel = self.group(channel.id).await?;
        self.messages.post_service(&channel, actor, Action::ChannelMigrateFrom { title: chat.title.clone(), chat: id.0 }, &[], None, Some(origin_key)).await?;
        for u in &member_ids {
            self.notify(*u, &chat, GroupChange::Edited);
            self.notify(*u, &channel, GroupChange::Joined);
        }
        Ok((self.group(id).await?, channel))
    }

    // ---- reading -----------------------------------------------------------------------

    /// A group as `viewer` may see it: members see theirs; anyone sees public channels;
    /// former members of basic groups still see theirs (left, with the history they had).
    pub async fn visible(&self, viewer: UserId, id: GroupId) -> Result<(Group, Option<Member>)> {
        let g = self.group(id).await?;
        let m = self.groups.member(id, viewer).await?;
        let ok = match g.kind {
            GroupKind::Basic => m.is_some(),
            _ => {
                !g.deleted && (m.as_ref().is_some_and(|m| m.role.is_member()) || (g.username.is_some() && !m.as_ref().is_some_and(|m| m.role == Role::Kicked)))
            }
        };
        if !ok {
            return Err(if g.kind.is_channel() { GroupError::ChannelPrivate } else { GroupError::ChatIdInvalid }.into());
        }
        Ok((g, m))
    }

    /// Groups by id with the viewer's membership, skipping ones the viewer may not see.
    pub async fn known(&self, viewer: UserId, ids: &[GroupId]) -> Result<Vec<(Group, Option<Member>)>> {
        let mut out = Vec::new();
        for g in self.groups.groups(ids).await? {
            let m = self.groups.member(g.id, viewer).await?;
            out.push((g, m));
        }
        Ok(out)
    }

    /// Public channels whose username starts with `q` (`contacts.search`).
    pub async fn public_by_prefix(&self, q: &str, limit: usize) -> Result<Vec<Group>> {
        let q = crate::contacts::search_query(q)?;
        Ok(self.groups.groups_by_username_prefix(&q, limit.clamp(1, 100)).await?)
    }

    /// A public channel by its username.
    pub async fn by_username(&self, name: &str) -> Result<Option<Group>> {
        Ok(self.groups.group_by_username(name).await?.filter(|g| !g.deleted))
    }

    pub async fn member(&self, id: GroupId, user: UserId) -> Result<Option<Member>> {
        Ok(self.groups.member(id, user).await?)
    }

    /// `channels.getParticipants`; member lists of broadcast channels are for admins.
    pub async fn participants(&self, viewer: UserId, id: GroupId, filter: &MemberFilter, offset: i32, limit: i32) -> Result<(Vec<Member>, i32)> {
        let (g, m) = self.visible(viewer, id).await?;
        let admin = m.as_ref().is_some_and(|m| m.role.is_admin());
        if g.kind == GroupKind::Broadcast && !admin {
            return Err(GroupError::ChatAdminRequired.into());
        }
        if matches!(filter, MemberFilter::Kicked(_) | MemberFilter::Banned(_)) && !admin {
            return Err(GroupError::ChatAdminRequired.into());
        }
        // A search text longer than any name only costs the scan more.
        let cut = |q: &String| q.chars().take(SEARCH_MAX).collect::<String>();
        let filter = match filter {
            MemberFilter::Search(q) => MemberFilter::Search(cut(q)),
            MemberFilter::Kicked(q) => MemberFilter::Kicked(cut(q)),
            MemberFilter::Banned(q) => MemberFilter::Banned(cut(q)),
            other => other.clone(),
        };
        Ok(self.groups.members(id, &filter, offset, limit.clamp(0, PARTICIPANTS_LIMIT_MAX)).await?)
    }

    pub async fn participant(&self, viewer: UserId, id: GroupId, user: UserId) -> Result<Member> {
        self.visible(viewer, id).await?;
        self.groups.member(id, user).await?.filter(|m| m.role.is_member() || m.role == Role::Kicked).ok_or_else(|| GroupError::UserNotParticipant.into())
    }

    /// `messages.getCommonChats`: groups `viewer` and `other` are both in, newest first,
    /// ids below `max_id` (Telegram's paging: the last id seen; 0 for the first page), at
    /// most `limit` (1..=100).
    pub async fn common(&self, viewer: UserId, other: UserId, max_id: i64, limit: i32) -> Result<Vec<GroupId>> {
        Ok(self.groups.common_groups(viewer, other, max_id, limit.clamp(1, 100) as usize).await?)
    }

    /// Ids of the groups `user` is in (for subscriptions: channels only).
    pub async fn user_channels(&self, user: UserId) -> Result<Vec<GroupId>> {
        Ok(self.groups.user_groups(user, true).await?)
    }

    // ---- invite links ------------------------------------------------------------------

    /// `messages.exportChatInvite`: a new link (admins with the invite right).
    pub async fn export_invite(
        &self,
        actor: UserId,
        id: GroupId,
        expire_date: Option<i32>,
        usage_limit: Option<i32>,
        request_needed: bool,
        title: Option<String>,
    ) -> Result<Invite> {
        self.with_right(id, actor, AdminRights::INVITE_USERS).await?;
        self.spend_link(actor)?;
        let mut raw = [0u8; 12];
        for chunk in raw.chunks_mut(8) {
            let r = random_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        let hash: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let inv = Invite {
            hash,
            group: id,
            admin: actor,
            date: self.now(),
            expire_date: expire_date.filter(|d| *d > 0),
            usage_limit: usage_limit.filter(|u| *u > 0),
            usage: 0,
            request_needed,
            revoked: false,
            title: title.map(|t| t.chars().take(32).collect()),
            permanent: false,
        };
        self.groups.put_invite(&inv).await?;
        Ok(inv)
    }

    async fn live_invite(&self, hash: &str) -> Result<(Invite, Group)> {
        let inv = self.groups.invite(hash).await?.ok_or(GroupError::InviteHashInvalid)?;
        let g = self.group(inv.group).await?;
        let now = self.now();
        let expired = inv.revoked || inv.expire_date.is_some_and(|d| d <= now) || inv.usage_limit.is_some_and(|l| inv.usage >= l) || g.deleted;
        if expired {
            return Err(GroupError::InviteHashExpired.into());
        }
        Ok((inv, g))
    }

    pub async fn check_invite(&self, viewer: UserId, hash: &str) -> Result<InviteCheck> {
        let (invite, group) = self.live_invite(hash).await?;
        if self.groups.member(group.id, viewer).await?.is_some_and(|m| m.role.is_member()) {
            return Ok(InviteCheck::Already(group));
        }
        Ok(InviteCheck::Invite { group, invite })
    }

    /// `messages.importChatInvite`: join by link; a link that needs approval files a request
    /// (`INVITE_REQUEST_SENT`).
    pub async fn import_invite(&self, user: UserId, origin_key: i64, hash: &str) -> Result<Changed> {
        let (invite, g) = self.live_invite(hash).await?;
        match self.groups.member(g.id, user).await?.map(|m| m.role) {
            Some(r) if r.is_member() => return Err(GroupError::UserAlreadyParticipant.into()),
            Some(Role::Kicked) => return Err(GroupError::UserBannedInChannel.into()),
            _ => {}
        }
        if invite.request_needed {
            self.spend_link(user)?;
            self.groups.put_join_request(&JoinRequest { group: g.id, user, date: self.now(), invite: invite.hash.clone() }).await?;
            return Err(GroupError::InviteRequestSent.into());
        }
        if !self.groups.use_invite(hash, self.now()).await? {
            return Err(GroupError::InviteHashExpired.into());
        }
        self.enter(&g, user, invite.admin, origin_key, Some(Action::ChatJoinedByLink { inviter: invite.admin.0 })).await
    }

    pub async fn invites(&self, actor: UserId, id: GroupId, admin: Option<UserId>, revoked: bool, limit: i32) -> Result<Vec<Invite>> {
        self.with_right(id, actor, AdminRights::INVITE_USERS).await?;
        Ok(self.groups.invites(id, admin, revoked, limit.clamp(1, 100)).await?)
    }

    /// `messages.editExportedChatInvite`: revoke, or change expiry, limit or approval.
    pub async fn edit_invite(&self, actor: UserId, id: GroupId, hash: &str, edit: impl FnOnce(&mut Invite)) -> Result<Invite> {
        let (_, me) = self.with_right(id, actor, AdminRights::INVITE_USERS).await?;
        let mut inv = self.groups.invite(hash).await?.filter(|i| i.group == id).ok_or(GroupError::InviteHashInvalid)?;
        if inv.admin != actor && me.role != Role::Creator {
            return Err(GroupError::ChatAdminRequired.into());
        }
        self.spend_link(actor)?;
        edit(&mut inv);
        self.groups.put_invite(&inv).await?;
        Ok(inv)
    }

    /// `messages.hideChatJoinRequest`: approve (the user joins) or decline a request.
    pub async fn decide_request(&self, actor: UserId, origin_key: i64, id: GroupId, user: UserId, approve: bool) -> Result<Option<Changed>> {
        let (g, _) = self.with_right(id, actor, AdminRights::INVITE_USERS).await?;
        if !self.groups.take_join_request(id, user).await? {
            return Err(GroupError::HideRequesterMissing.into());
        }
        if !approve {
            return Ok(None);
        }
        Ok(Some(self.enter(&g, user, actor, origin_key, Some(Action::ChatJoinedByRequest)).await?))
    }

    pub async fn join_requests(&self, actor: UserId, id: GroupId) -> Result<Vec<JoinRequest>> {
        self.with_right(id, actor, AdminRights::INVITE_USERS).await?;
        Ok(self.groups.join_requests(id).await?)
    }
}
