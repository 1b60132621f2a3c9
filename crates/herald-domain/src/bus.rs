//! The event bus: how a state change reaches every online session of the users it concerns.
//!
//! It only notifies. The store is the durable record, and a session that misses an event
//! repairs the gap with `updates.getDifference`. The in-process implementation keeps one
//! bounded channel per subscribed session; a subscriber whose queue is full is dropped (its
//! session re-reads its state and catches up through getDifference) rather than stalling
//! the sender.

use crate::model::{PtsUpdate, TypingAction, UserId};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// pts-ordered changes to one user's box.
    Updates {
        user: UserId,
        /// The auth key whose request caused this: that session gets the change as its RPC
        /// result, so it is not pushed there again.
        origin: Option<i64>,
        updates: Vec<PtsUpdate>,
    },
    /// `from` is typing to `user`.
    Typing { user: UserId, from: UserId, action: TypingAction },
    /// The key was logged out: sessions on it stop receiving the user's events.
    KeyUnbound { user: UserId, auth_key_id: i64 },
}

impl Event {
    pub fn user(&self) -> UserId {
        match self {
            Event::Updates { user, .. } | Event::Typing { user, .. } | Event::KeyUnbound { user, .. } => *user,
        }
    }
}

pub trait EventBus: Send + Sync {
    fn publish(&self, event: Event);
    /// Subscribes a session to a user's events. Dropping the receiver unsubscribes.
    fn subscribe(&self, user: UserId) -> mpsc::Receiver<Event>;
}

/// Per-session queue length before events are dropped (the session catches up via
/// getDifference).
pub const SUBSCRIBER_QUEUE: usize = 1024;

#[derive(Default)]
pub struct InProcessBus {
    // A std Mutex: the critical sections are short and never await.
    subscribers: Mutex<HashMap<UserId, Vec<mpsc::Sender<Event>>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Event) {
        let mut subs = self.subscribers.lock().unwrap();
        if let Some(list) = subs.get_mut(&event.user()) {
            list.retain(|tx| match tx.try_send(event.clone()) {
                Ok(()) => true,
                // A subscriber that cannot keep up is dropped rather than silently missing
                // events: its session notices, re-reads its state and catches up.
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(user = event.user().0, "subscriber queue full; dropping the subscriber");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            if list.is_empty() {
                subs.remove(&event.user());
            }
        }
    }

    fn subscribe(&self, user: UserId) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        self.subscribers.lock().unwrap().entry(user).or_default().push(tx);
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_reach_only_the_users_subscribers_and_dropped_ones_are_pruned() {
        let bus = InProcessBus::new();
        let mut a1 = bus.subscribe(UserId(1));
        let mut a2 = bus.subscribe(UserId(1));
        let mut b = bus.subscribe(UserId(2));
        let ev = Event::Typing { user: UserId(1), from: UserId(2), action: TypingAction::Typing };
        bus.publish(ev.clone());
        assert_eq!(a1.recv().await, Some(ev.clone()));
        assert_eq!(a2.recv().await, Some(ev.clone()));
        assert!(b.try_recv().is_err());
        drop(a1);
        drop(a2);
        bus.publish(ev);
        assert!(bus.subscribers.lock().unwrap().get(&UserId(1)).is_none());
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_dropped_not_starved() {
        let bus = InProcessBus::new();
        let mut slow = bus.subscribe(UserId(1));
        let ev = Event::Typing { user: UserId(1), from: UserId(2), action: TypingAction::Typing };
        for _ in 0..=SUBSCRIBER_QUEUE {
            bus.publish(ev.clone());
        }
        for _ in 0..SUBSCRIBER_QUEUE {
            assert!(slow.recv().await.is_some());
        }
        assert_eq!(slow.recv().await, None, "closed, so the session knows it missed something");
    }
}
