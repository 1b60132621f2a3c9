//! The event bus: how a state change reaches every online session of the users it concerns.
//!
//! It only notifies. The store is the durable record, and a session that misses an event
//! repairs the gap with `updates.getDifference`. The in-process implementation keeps one
//! bounded queue per subscribed session; a subscriber whose queue is full is dropped (its
//! session re-reads its state and catches up through getDifference) rather than stalling
//! the sender.

use crate::model::{Draft, GroupId, Peer, PtsUpdate, Reactions, TypingAction, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where an event is published: a user's sessions, or every session following a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Topic {
    User(UserId),
    Channel(GroupId),
}

/// What a gateway loaded once for every receiver of an event (the users and groups a channel
/// post names), shared by all the sessions it delivers to; each renders it for its viewer.
/// Type-erased so the domain stays free of wire types; not part of the serialized event.
#[derive(Clone, Default)]
pub struct Rendered(pub Arc<tokio::sync::OnceCell<Arc<dyn std::any::Any + Send + Sync>>>);

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.initialized() { "Rendered(loaded)" } else { "Rendered(empty)" })
    }
}

impl PartialEq for Rendered {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Rendered {}

/// A change in a group that its members' sessions should show (no pts: the group object
/// itself changed, or the user's standing in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupChange {
    /// Title, about, rights, pinned message or the like: refetch the group.
    Edited,
    /// The user became a member (follow the channel) or stopped being one (unfollow).
    Joined,
    Left,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// pts-ordered changes to one user's box.
    Updates {
        user: UserId,
        /// The auth key whose request caused this: that session gets the change as its RPC
        /// result, so it is not pushed there again.
        origin: Option<i64>,
        updates: Vec<PtsUpdate>,
    },
    /// pts-ordered changes to a channel's box, published once on the channel's topic whatever
    /// its member count; each gateway renders it for its own sessions.
    Channel {
        channel: GroupId,
        /// The user and key whose request caused this (that key got it as its result).
        origin: Option<(UserId, i64)>,
        updates: Vec<PtsUpdate>,
        #[serde(skip)]
        rendered: Rendered,
    },
    /// A group changed for `user` (membership, rights, description).
    Group { user: UserId, group: GroupId, channel: bool, change: GroupChange },
    /// A channel member's read mark moved (to the member's own sessions).
    ReadChannel { user: UserId, channel: GroupId, max_id: i32, still_unread: i32, pts: i32 },
    /// Someone else read `user`'s messages in a supergroup up to `max_id`.
    ReadChannelOutbox { user: UserId, channel: GroupId, max_id: i32 },
    /// `from` is typing to `user` (in `group` when set).
    Typing { user: UserId, from: UserId, group: Option<(GroupId, bool)>, action: TypingAction },
    /// `user` marked their dialog with `peer` unread, or cleared the mark (to their sessions).
    DialogUnreadMark { user: UserId, peer: Peer, unread: bool },
    /// `user` blocked or unblocked `peer` (to `user`'s sessions).
    PeerBlocked { user: UserId, peer: UserId, blocked: bool },
    /// `from` is typing in supergroup `channel` (published once on the channel's topic).
    ChannelTyping { channel: GroupId, from: UserId, action: TypingAction },
    /// The reactions to message `msg_id` of `user`'s dialog with `peer` changed.
    Reactions { user: UserId, peer: Peer, msg_id: i32, reactions: Reactions },
    /// The reactions to a channel message changed (published once on the channel's topic).
    /// A broadcast channel's subscribers do not see who reacted.
    ChannelReactions { channel: GroupId, msg_id: i32, reactions: Reactions, broadcast: bool },
    /// `user` saved or cleared (`None`) a draft in their dialog with `peer` (to their other
    /// sessions: `origin` wrote it).
    Draft { user: UserId, peer: Peer, draft: Option<Draft>, origin: i64 },
    /// `user` pinned or unpinned a dialog.
    DialogPinned { user: UserId, peer: Peer, pinned: bool, folder: i32, origin: i64 },
    /// `user` reordered a folder's pinned dialogs (top first).
    PinnedDialogs { user: UserId, folder: i32, order: Vec<Peer>, origin: i64 },
    /// `user` moved dialogs between the main list (0) and the archive (1).
    FolderPeers { user: UserId, peers: Vec<(Peer, i32)>, origin: i64 },
    /// `of` went online or offline (to `user`, who has `of` among their contacts).
    UserStatus { user: UserId, of: UserId, status: crate::presence::Status },
    /// `user`'s scheduled messages `ids` for `peer` are gone: deleted, or sent as `sent`.
    ScheduledGone { user: UserId, peer: Peer, ids: Vec<i32>, sent: Vec<i32> },
    /// The key was logged out: sessions on it stop receiving the user's events.
    KeyUnbound { user: UserId, auth_key_id: i64 },
}

impl Event {
    pub fn topic(&self) -> Topic {
        match self {
            Event::Updates { user, .. }
            | Event::Typing { user, .. }
            | Event::KeyUnbound { user, .. }
            | Event::Group { user, .. }
            | Event::ReadChannel { user, .. }
            | Event::ReadChannelOutbox { user, .. }
            | Event::PeerBlocked { user, .. }
            | Event::DialogUnreadMark { user, .. }
            | Event::Reactions { user, .. }
            | Event::Draft { user, .. }
            | Event::DialogPinned { user, .. }
            | Event::PinnedDialogs { user, .. }
            | Event::FolderPeers { user, .. }
            | Event::UserStatus { user, .. }
            | Event::ScheduledGone { user, .. } => Topic::User(*user),
            Event::Channel { channel, .. } | Event::ChannelTyping { channel, .. } | Event::ChannelReactions { channel, .. } => Topic::Channel(*channel),
        }
    }
}

/// A session's subscription: one queue, fed by the user's topic and the channels it follows.
/// Events are shared, not copied, between the subscribers of a topic: a post to 10 000
/// members is one allocation.
pub struct Subscription {
    pub id: u64,
    pub rx: Receiver,
}

/// One subscription's queue: a deque and the receiver's waker behind a mutex rather than a
/// tokio channel. Every authorised connection holds one, mostly idle, and a tokio channel
/// allocates its shared state and a first block of 32 slots up front (about 1 000 bytes,
/// measured); this is one small allocation, the deque's buffer is given back whenever it
/// empties, and waiting for it adds nothing to the connection task's size.
#[derive(Default)]
struct QueueState {
    events: VecDeque<Arc<Event>>,
    /// The receiver waiting for an event (one receiver, so one slot).
    waker: Option<std::task::Waker>,
    /// The bus dropped the subscriber (its queue was full, or it unsubscribed).
    dropped: bool,
    /// The receiver is gone.
    receiver_gone: bool,
}

/// The sending end of one subscription's queue (cloned into each topic it follows).
#[derive(Clone)]
struct Queue(Arc<Mutex<QueueState>>);

enum SendError {
    Full,
    Closed,
}

impl Queue {
    fn try_send(&self, event: Arc<Event>) -> Result<(), SendError> {
        let mut st = self.0.lock().unwrap();
        if st.receiver_gone {
            return Err(SendError::Closed);
        }
        if st.events.len() >= SUBSCRIBER_QUEUE {
            return Err(SendError::Full);
        }
        st.events.push_back(event);
        wake_receiver(st);
        Ok(())
    }

    /// The bus has let go of this subscriber: its receiver reads what is queued, then `None`.
    fn close(&self) {
        let mut st = self.0.lock().unwrap();
        st.dropped = true;
        wake_receiver(st);
    }
}

/// Wakes the waiting receiver, if any, after letting go of the queue's lock.
fn wake_receiver(mut st: std::sync::MutexGuard<'_, QueueState>) {
    let waker = st.waker.take();
    drop(st);
    if let Some(w) = waker {
        w.wake();
    }
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    /// The bus dropped the subscriber and nothing is left to read.
    Disconnected,
}

/// The receiving end of a subscription's queue.
pub struct Receiver(Arc<Mutex<QueueState>>);

impl Receiver {
    /// The next event; `None` once the bus has dropped the subscriber and the queue is empty.
    /// Cancel-safe: an event is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`Self::recv`] as a poll function, for a caller that polls several sources itself
    /// (a connection's loop keeps no future for it).
    pub fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Arc<Event>>> {
        let mut st = self.0.lock().unwrap();
        match Self::take(&mut st) {
            Ok(event) => std::task::Poll::Ready(Some(event)),
            Err(TryRecvError::Disconnected) => std::task::Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                // Registered under the lock a sender takes: no event slips past.
                if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    st.waker = Some(cx.waker().clone());
                }
                std::task::Poll::Pending
            }
        }
    }

    pub fn try_recv(&mut self) -> Result<Arc<Event>, TryRecvError> {
        Self::take(&mut self.0.lock().unwrap())
    }

    fn take(st: &mut QueueState) -> Result<Arc<Event>, TryRecvError> {
        match st.events.pop_front() {
            Some(event) => {
                if st.events.is_empty() {
                    st.events = VecDeque::new();
                }
                Ok(event)
            }
            None if st.dropped => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut st = self.0.lock().unwrap();
        st.receiver_gone = true;
        st.events = VecDeque::new();
        st.waker = None;
    }
}

fn queue() -> (Queue, Receiver) {
    let shared = Arc::new(Mutex::new(QueueState::default()));
    (Queue(shared.clone()), Receiver(shared))
}

pub trait EventBus: Send + Sync {
    fn publish(&self, event: Event);
    /// Subscribes a session to a user's events. Dropping the receiver unsubscribes (the
    /// topics it followed are pruned on their next publish, or by [`EventBus::unsubscribe`]).
    fn subscribe(&self, user: UserId) -> Subscription;
    /// Adds a channel's topic to a subscription.
    fn follow(&self, sub: u64, channel: GroupId);
    fn unfollow(&self, sub: u64, channel: GroupId);
    fn unsubscribe(&self, sub: u64);
}

/// Per-session queue length before events are dropped (the session catches up via
/// getDifference).
pub const SUBSCRIBER_QUEUE: usize = 1024;

#[derive(Default)]
struct Subscribers {
    topics: HashMap<Topic, Vec<(u64, Queue)>>,
    /// Each subscription's sender, user and the channels it follows.
    subs: HashMap<u64, (Queue, UserId, Vec<GroupId>)>,
}

#[derive(Default)]
pub struct InProcessBus {
    // A std Mutex: the critical sections are short and never await.
    inner: Mutex<Subscribers>,
    next: AtomicU64,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Event) {
        let topic = event.topic();
        let event = Arc::new(event);
        let mut inner = self.inner.lock().unwrap();
        let Some(list) = inner.topics.get_mut(&topic) else { return };
        let mut dropped = Vec::new();
        list.retain(|(id, tx)| match tx.try_send(event.clone()) {
            Ok(()) => true,
            // A subscriber that cannot keep up is dropped rather than silently missing
            // events: its session notices, re-reads its state and catches up.
            Err(SendError::Full) => {
                tracing::debug!(?topic, "subscriber queue full; dropping the subscriber");
                dropped.push(*id);
                false
            }
            Err(SendError::Closed) => {
                dropped.push(*id);
                false
            }
        });
        if list.is_empty() {
            inner.topics.remove(&topic);
        }
        for id in dropped {
            remove_sub(&mut inner, id);
        }
    }

    fn subscribe(&self, user: UserId) -> Subscription {
        let (tx, rx) = queue();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner.lock().unwrap();
        push_one(inner.topics.entry(Topic::User(user)).or_default(), (id, tx.clone()));
        inner.subs.insert(id, (tx, user, Vec::new()));
        Subscription { id, rx }
    }

    fn follow(&self, sub: u64, channel: GroupId) {
        let mut inner = self.inner.lock().unwrap();
        let Some((tx, _, channels)) = inner.subs.get_mut(&sub) else { return };
        if channels.contains(&channel) {
            return;
        }
        channels.push(channel);
        let tx = tx.clone();
        push_one(inner.topics.entry(Topic::Channel(channel)).or_default(), (sub, tx));
    }

    fn unfollow(&self, sub: u64, channel: GroupId) {
        let mut inner = self.inner.lock().unwrap();
        if let Some((_, _, channels)) = inner.subs.get_mut(&sub) {
            channels.retain(|c| *c != channel);
        }
        let topic = Topic::Channel(channel);
        if let Some(list) = inner.topics.get_mut(&topic) {
            list.retain(|(id, _)| *id != sub);
            if list.is_empty() {
                inner.topics.remove(&topic);
            }
        }
    }

    fn unsubscribe(&self, sub: u64) {
        remove_sub(&mut self.inner.lock().unwrap(), sub);
    }
}

/// Adds a topic's subscriber. Most topics have one or two (a user's sessions, a small
/// group's members online): a new list holds exactly one, where `push` would reserve four.
fn push_one(list: &mut Vec<(u64, Queue)>, sub: (u64, Queue)) {
    if list.capacity() == 0 {
        list.reserve_exact(1);
    }
    list.push(sub);
}

/// Forgets a subscription and every topic entry it had.
fn remove_sub(inner: &mut Subscribers, id: u64) {
    let Some((tx, user, channels)) = inner.subs.remove(&id) else { return };
    tx.close();
    for topic in channels.into_iter().map(Topic::Channel).chain([Topic::User(user)]) {
        if let Some(list) = inner.topics.get_mut(&topic) {
            list.retain(|(s, _)| *s != id);
            if list.is_empty() {
                inner.topics.remove(&topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typing(user: i64) -> Event {
        Event::Typing { user: UserId(user), from: UserId(2), group: None, action: TypingAction::Typing }
    }

    #[tokio::test]
    async fn events_reach_only_the_users_subscribers_and_dropped_ones_are_pruned() {
        let bus = InProcessBus::new();
        let mut a1 = bus.subscribe(UserId(1));
        let mut a2 = bus.subscribe(UserId(1));
        let mut b = bus.subscribe(UserId(2));
        let ev = typing(1);
        bus.publish(ev.clone());
        assert_eq!(a1.rx.recv().await, Some(Arc::new(ev.clone())));
        assert_eq!(a2.rx.recv().await, Some(Arc::new(ev.clone())));
        assert!(b.rx.try_recv().is_err());
        drop(a1);
        drop(a2);
        bus.publish(ev);
        let inner = bus.inner.lock().unwrap();
        assert!(!inner.topics.contains_key(&Topic::User(UserId(1))));
        assert_eq!(inner.subs.len(), 1, "only b's subscription is left");
    }

    #[tokio::test]
    async fn a_channel_post_is_published_once_and_reaches_every_follower() {
        let bus = InProcessBus::new();
        let mut subs: Vec<Subscription> = (0..10).map(|u| bus.subscribe(UserId(u))).collect();
        for s in &subs[..5] {
            bus.follow(s.id, GroupId(7));
        }
        let post = Event::Channel { channel: GroupId(7), origin: None, updates: vec![], rendered: Rendered::default() };
        bus.publish(post.clone());
        for (i, s) in subs.iter_mut().enumerate() {
            assert_eq!(s.rx.try_recv().ok(), (i < 5).then(|| Arc::new(post.clone())), "subscriber {i}");
        }
        bus.unfollow(subs[0].id, GroupId(7));
        bus.unsubscribe(subs[1].id);
        bus.publish(post.clone());
        assert!(subs[0].rx.try_recv().is_err());
        assert!(subs[1].rx.try_recv().is_err());
        assert!(subs[2].rx.try_recv().is_ok());
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_dropped_not_starved() {
        let bus = InProcessBus::new();
        let mut slow = bus.subscribe(UserId(1));
        bus.follow(slow.id, GroupId(3));
        let ev = typing(1);
        for _ in 0..=SUBSCRIBER_QUEUE {
            bus.publish(ev.clone());
        }
        for _ in 0..SUBSCRIBER_QUEUE {
            assert!(slow.rx.recv().await.is_some());
        }
        assert_eq!(slow.rx.recv().await, None, "closed, so the session knows it missed something");
        assert!(bus.inner.lock().unwrap().topics.is_empty(), "its channel topic went with it");
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_and_an_empty_queue_holds_no_buffer() {
        let bus = Arc::new(InProcessBus::new());
        let mut sub = bus.subscribe(UserId(1));
        let id = sub.id;
        let waiting = tokio::spawn(async move {
            let first = sub.rx.recv().await;
            (first, sub)
        });
        tokio::task::yield_now().await;
        bus.publish(typing(1));
        let (first, mut sub) = waiting.await.unwrap();
        assert_eq!(first, Some(Arc::new(typing(1))));
        assert_eq!(sub.rx.0.lock().unwrap().events.capacity(), 0, "drained: the buffer is given back");
        assert_eq!(sub.rx.try_recv(), Err(TryRecvError::Empty));
        bus.publish(typing(1));
        bus.unsubscribe(id);
        assert!(sub.rx.recv().await.is_some(), "what was queued is still read");
        assert_eq!(sub.rx.recv().await, None, "then the end");
        assert_eq!(sub.rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn events_serialize_without_their_rendering() {
        let ev = Event::Channel { channel: GroupId(1), origin: Some((UserId(2), 3)), updates: vec![], rendered: Rendered::default() };
        let _ = ev.clone();
        let json = serde_json::to_string(&ev).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ev);
    }
}
