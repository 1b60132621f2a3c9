//! Users as a viewer sees them (`users_seen_by`), served from memory.
//!
//! Every answer and every push names its users as the viewer sees them: the user's row, the
//! viewer's contact entry for them, whether they have the viewer as a contact and whether
//! they blocked the viewer. Read from SQLite that is five b-tree searches per user, and in
//! WAL mode a read connection's page cache is emptied whenever another connection committed
//! since its last read (SQLite resets the pager when the WAL index changed): under the
//! group-commit writer, every such read fetched its pages from the file again. perf put
//! these reads at a tenth of the server's CPU on the private-message path.
//!
//! **Coherence.** Entries are dropped after the commit that changed what they show and before
//! that commit's callers hear of it, so a client never reads its own change stale:
//! - a change to a `users` row is seen by SQLite's update hook on the writer connection
//!   ([`user_changed`]), so no write path can forget it;
//! - `contacts` and `blocked` are `WITHOUT ROWID` tables, which the update hook does not
//!   report: every write to them calls [`pair_changed`] or [`all_relations_changed`].
//!
//! The writer collects these during a batch and [`SeenCache::apply_pending`] drops the
//! entries after `COMMIT` (or rollback), bumping a generation. A read that missed records the
//! generation before its read transaction starts and fills the cache only if it is unchanged
//! when it is done: a read whose snapshot predates a change can never store it after the
//! change's entries were dropped. Bounded: past [`MAX_ENTRIES`] users or relations, that map
//! starts over.

use herald_domain::model::{Contact, SeenUser, User};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

/// Users, and (viewer, user) relations, kept at most.
pub const MAX_ENTRIES: usize = 100_000;

/// What a viewer's view of a user adds to the user's row.
#[derive(Clone)]
struct Relation {
    contact: Option<Contact>,
    has_viewer: bool,
    blocked_viewer: bool,
}

#[derive(Default)]
struct State {
    generation: u64,
    users: HashMap<i64, User>,
    /// Keyed by (viewer, user).
    relations: HashMap<(i64, i64), Relation>,
}

#[derive(Default)]
pub(crate) struct SeenCache(Mutex<State>);

impl SeenCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every id as `viewer` sees them, in order, when all are kept; otherwise the generation
    /// to pass to [`Self::fill`] after reading them from the store.
    pub fn get(&self, viewer: i64, ids: &[i64]) -> Result<Vec<SeenUser>, u64> {
        let st = self.state();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match (st.users.get(id), st.relations.get(&(viewer, *id))) {
                (Some(user), Some(r)) => {
                    out.push(SeenUser { user: user.clone(), contact: r.contact.clone(), has_viewer: r.has_viewer, blocked_viewer: r.blocked_viewer })
                }
                _ => return Err(st.generation),
            }
        }
        Ok(out)
    }

    /// A user's row when kept; otherwise the generation to pass to [`Self::fill_user`].
    pub fn user(&self, id: i64) -> Result<User, u64> {
        let st = self.state();
        st.users.get(&id).cloned().ok_or(st.generation)
    }

    /// Keeps a user's row read from the store (see [`Self::fill`]).
    pub fn fill_user(&self, generation: u64, user: &User) {
        let mut st = self.state();
        if st.generation != generation {
            return;
        }
        make_room(&mut st.users, 1);
        st.users.insert(user.id.0, user.clone());
    }

    /// Keeps what a read found, unless something changed since `generation` (the read may
    /// have seen it before the change).
    pub fn fill(&self, generation: u64, viewer: i64, seen: &[SeenUser]) {
        let mut st = self.state();
        if st.generation != generation {
            return;
        }
        make_room(&mut st.users, seen.len());
        make_room(&mut st.relations, seen.len());
        for s in seen {
            st.users.insert(s.user.id.0, s.user.clone());
            st.relations.insert((viewer, s.user.id.0), Relation { contact: s.contact.clone(), has_viewer: s.has_viewer, blocked_viewer: s.blocked_viewer });
        }
    }

    /// Drops what the writer's last batch changed (call after its COMMIT or ROLLBACK, before
    /// any of its callers is answered).
    pub fn apply_pending(&self) {
        let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if pending.users.is_empty() && pending.pairs.is_empty() && !pending.all_relations {
            return;
        }
        let mut st = self.state();
        st.generation += 1;
        for id in pending.users {
            st.users.remove(&id);
        }
        if pending.all_relations {
            st.relations = HashMap::new();
        } else {
            for (a, b) in pending.pairs {
                st.relations.remove(&(a, b));
                st.relations.remove(&(b, a));
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        let st = self.state();
        (st.users.len(), st.relations.len())
    }
}

/// Starts `map` over if `adding` more entries would take it past [`MAX_ENTRIES`].
fn make_room<K, V>(map: &mut HashMap<K, V>, adding: usize) {
    if map.len() + adding > MAX_ENTRIES {
        *map = HashMap::new();
    }
}

/// Changes seen by the writer thread in its current batch.
#[derive(Default)]
struct Pending {
    users: Vec<i64>,
    pairs: Vec<(i64, i64)>,
    all_relations: bool,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// A `users` row was written (from the writer connection's update hook).
pub(crate) fn user_changed(id: i64) {
    PENDING.with(|p| p.borrow_mut().users.push(id));
}

/// A `contacts` or `blocked` row between `a` and `b` (either way) was written.
pub(crate) fn pair_changed(a: i64, b: i64) {
    PENDING.with(|p| p.borrow_mut().pairs.push((a, b)));
}

/// Rows of `contacts` or `blocked` were written for pairs not listed (an account's whole
/// address book deleted).
pub(crate) fn all_relations_changed() {
    PENDING.with(|p| p.borrow_mut().all_relations = true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_domain::model::UserId;

    fn seen(id: i64, first_name: &str) -> SeenUser {
        let user = User {
            id: UserId(id),
            phone: format!("999{id}"),
            first_name: first_name.into(),
            last_name: String::new(),
            username: None,
            about: String::new(),
            home_dc: 1,
            created_at: 0,
            is_service: false,
            last_seen: 0,
            privacy: Default::default(),
            deleted: false,
            account_ttl_days: 365,
            photo_id: None,
            photo_stripped: None,
        };
        SeenUser { user, contact: None, has_viewer: false, blocked_viewer: false }
    }

    /// A read that began before a change is never kept after the change was applied, and a
    /// change drops the user for every viewer and the pair both ways.
    #[test]
    fn a_read_older_than_a_change_is_not_kept() {
        let cache = SeenCache::default();
        let g = cache.get(1, &[2]).unwrap_err();
        // The writer commits a change to user 2 while the read runs.
        user_changed(2);
        cache.apply_pending();
        cache.fill(g, 1, &[seen(2, "old")]);
        assert_eq!(cache.len(), (0, 0), "the stale read was dropped");

        let g = cache.get(1, &[2]).unwrap_err();
        cache.fill(g, 1, &[seen(2, "new")]);
        cache.fill(g, 3, &[seen(2, "new")]);
        assert_eq!(cache.get(1, &[2]).unwrap()[0].user.first_name, "new");
        assert_eq!(cache.len(), (1, 2));

        pair_changed(2, 1);
        cache.apply_pending();
        assert!(cache.get(1, &[2]).is_err(), "(viewer 1, user 2) dropped by a change of (2, 1)");
        assert!(cache.get(3, &[2]).is_ok(), "other viewers keep theirs");
        assert_eq!(cache.user(2).unwrap().first_name, "new", "the row itself did not change");

        user_changed(2);
        cache.apply_pending();
        assert!(cache.get(3, &[2]).is_err() && cache.user(2).is_err());

        let g = cache.get(3, &[2]).unwrap_err();
        cache.fill(g, 3, &[seen(2, "x")]);
        all_relations_changed();
        cache.apply_pending();
        assert_eq!(cache.len(), (1, 0));
    }

    #[test]
    fn nothing_pending_keeps_the_generation() {
        let cache = SeenCache::default();
        let g = cache.get(1, &[2]).unwrap_err();
        cache.apply_pending();
        cache.fill(g, 1, &[seen(2, "a")]);
        assert!(cache.get(1, &[2]).is_ok());
    }
}
