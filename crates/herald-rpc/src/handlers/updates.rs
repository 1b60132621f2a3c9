use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::model::BoxId;

/// At most this many channels are named in one account difference.
const CHANNELS_NAMED_MAX: usize = 500;
use std::sync::Arc;

pub(crate) fn state(pts: i32, date: i32, unread_count: i32) -> enums::updates::State {
    enums::updates::State::State(types::updates::State { pts, qts: 0, date, seq: 0, unread_count })
}

pub async fn get_state(s: Arc<Services>, ctx: CallCtx, _: functions::updates::GetState) -> Result<enums::updates::State, RpcError> {
    let st = s.messages.state(ctx.user()?).await?;
    Ok(state(st.pts, s.clock.now_secs() as i32, st.unread_count))
}

/// New messages go in `new_messages`, everything else in `other_updates`; a slice carries
/// `intermediate_state` and the client asks again (client-compat.md §4.4).
pub async fn get_difference(s: Arc<Services>, ctx: CallCtx, r: functions::updates::GetDifference) -> Result<enums::updates::Difference, RpcError> {
    let me = ctx.user()?;
    let now = s.clock.now_secs() as i32;
    let diff = s.messages.difference(me, r.pts).await?;
    // Older than the kept log: the client reloads its state from `pts`.
    if diff.too_long {
        return Ok(enums::updates::Difference::TooLong(types::updates::DifferenceTooLong { pts: diff.pts }));
    }
    // Channels have their own pts: the account's difference names those with posts since the
    // client's date (`updateChannelTooLong`), and the client asks each for its difference
    // (client-compat.md §4.4). Only on the last slice, so each is named once.
    let stale = if diff.more { vec![] } else { s.messages.channels_posted_since(me, r.date, CHANNELS_NAMED_MAX).await? };
    if diff.updates.is_empty() && !diff.more && stale.is_empty() {
        // A client ahead of the server (its state is from elsewhere): tell it to resync.
        if diff.pts < r.pts {
            return Ok(enums::updates::Difference::TooLong(types::updates::DifferenceTooLong { pts: diff.pts }));
        }
        if diff.pts == r.pts {
            return Ok(enums::updates::Difference::Empty(types::updates::DifferenceEmpty { date: now, seq: 0 }));
        }
    }
    let convert::SplitDifference { new_messages, mut other_updates, users: user_ids, groups: mut group_ids } =
        convert::split_difference(&s.files, me, BoxId::User(me), &diff.updates);
    for g in &stale {
        other_updates.push(enums::Update::ChannelTooLong(types::UpdateChannelTooLong { channel_id: g.0, pts: None }));
        group_ids.push(*g);
    }
    let users = convert::users(&s, me, user_ids).await?;
    let chats = convert::chats(&s, me, group_ids).await?;
    let unread = if diff.more { 0 } else { s.messages.state(me).await?.unread_count };
    let st = state(diff.pts, now, unread);
    Ok(if diff.more {
        enums::updates::Difference::Slice(types::updates::DifferenceSlice {
            new_messages,
            new_encrypted_messages: vec![],
            other_updates,
            chats: chats.clone(),
            users,
            intermediate_state: st,
        })
    } else {
        enums::updates::Difference::Difference(types::updates::Difference {
            new_messages,
            new_encrypted_messages: vec![],
            other_updates,
            chats: chats.clone(),
            users,
            state: st,
        })
    })
}
