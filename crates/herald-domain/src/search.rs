//! Searching messages (docs/client-compat.md §4.11): in one conversation (`messages.search`)
//! and across the account's chats and channels (`messages.searchGlobal`).
//!
//! Text matches by word prefix: every word of the query must start a word of the message,
//! in any order, case and diacritics ignored (SQLite FTS5's `unicode61` tokenizer in the
//! embedded store). The index holds one row per logical message, tagged with the boxes that
//! hold a copy, so a search is one MATCH limited to the searcher's boxes.

use crate::error::Result;
use crate::messages::{MessageService, HISTORY_LIMIT_MAX};
use crate::model::*;

/// Words of a query that count; more are ignored.
pub const QUERY_WORDS_MAX: usize = 16;
/// Characters of one query word that count.
pub const QUERY_WORD_CHARS_MAX: usize = 64;
/// Channels a global search looks into (the most recently joined ones first would be
/// better; today: the store's order).
pub const GLOBAL_CHANNELS_MAX: usize = 500;

/// The words of a query: runs of letters and digits, lower case, each at most
/// [`QUERY_WORD_CHARS_MAX`] characters, at most [`QUERY_WORDS_MAX`] of them, no repeats.
pub fn search_words(q: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in q.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let w: String = w.to_lowercase().chars().take(QUERY_WORD_CHARS_MAX).collect();
        if !words.contains(&w) {
            words.push(w);
        }
        if words.len() == QUERY_WORDS_MAX {
            break;
        }
    }
    words
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchFilter {
    Everything,
    /// Messages that mention the searcher (`inputMessagesFilterMyMentions`).
    MyMentions,
    /// A kind of message that does not exist here yet (photos, documents, …): nothing.
    Nothing,
}

/// `messages.search` / `searchGlobal` parameters as the domain reads them.
#[derive(Clone, Debug)]
pub struct Search {
    pub q: String,
    pub from: Option<UserId>,
    pub filter: SearchFilter,
    pub min_date: i32,
    pub max_date: i32,
    pub offset_id: i32,
    pub add_offset: i32,
    pub limit: i32,
    pub max_id: i32,
    pub min_id: i32,
}

impl MessageService {
    fn query(&self, viewer: UserId, s: &Search, boxes: Vec<BoxId>) -> Option<SearchQuery> {
        let words = search_words(&s.q);
        // A query of punctuation alone finds nothing (rather than everything).
        if s.filter == SearchFilter::Nothing || (words.is_empty() && !s.q.trim().is_empty()) {
            return None;
        }
        Some(SearchQuery {
            boxes,
            peer: None,
            words,
            from: s.from,
            mentioning: (s.filter == SearchFilter::MyMentions).then_some(viewer),
            min_date: s.min_date.max(0),
            max_date: s.max_date.max(0),
            min_id: s.min_id.max(0),
            max_id: s.max_id.max(0),
            before: None,
            offset_id: s.offset_id.max(0),
            add_offset: s.add_offset.clamp(0, 10_000),
            limit: s.limit.clamp(0, HISTORY_LIMIT_MAX),
        })
    }

    /// `messages.search`: messages of one conversation (`peer`), or of all the account's
    /// private chats and basic groups (`None`), newest first, with the number matching.
    pub async fn search(&self, viewer: UserId, peer: Option<Peer>, s: Search) -> Result<(Vec<Message>, i32)> {
        let owner = match peer {
            Some(p) => self.box_for(viewer, p).await?,
            None => BoxId::User(viewer),
        };
        let Some(mut q) = self.query(viewer, &s, vec![owner]) else { return Ok((vec![], 0)) };
        q.peer = peer.filter(|_| matches!(owner, BoxId::User(_)));
        let (mut msgs, count) = self.store.search(q).await?;
        self.mark_pinned(owner, &mut msgs).await?;
        Ok((msgs, count))
    }

    /// `messages.searchGlobal`: text in the account's chats and in its channels, newest first,
    /// paged by the last result's (date, peer, id). An empty query finds nothing.
    pub async fn search_global(&self, viewer: UserId, s: Search, after: Option<(i32, Peer, i32)>) -> Result<(Vec<Message>, i32)> {
        if search_words(&s.q).is_empty() {
            return Ok((vec![], 0));
        }
        let mut boxes = vec![BoxId::User(viewer)];
        boxes.extend(self.groups.user_groups(viewer, true).await?.into_iter().take(GLOBAL_CHANNELS_MAX).map(BoxId::Channel));
        let Some(mut q) = self.query(viewer, &s, boxes) else { return Ok((vec![], 0)) };
        q.offset_id = 0;
        q.before = after.filter(|(rate, _, _)| *rate > 0).map(|(rate, p, id)| (rate, p.marked(), id));
        Ok(self.store.search(q).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words() {
        assert_eq!(search_words("  Hello, WORLD! hello"), vec!["hello", "world"]);
        assert_eq!(search_words("naïve café"), vec!["naïve", "café"]);
        assert_eq!(search_words("\"quoted\" * OR NEAR(x)"), vec!["quoted", "or", "near", "x"]);
        assert!(search_words("?!.,").is_empty());
        assert_eq!(search_words(&"a ".repeat(40)).len(), 1);
        let many: String = (0..40).map(|i| format!("w{i} ")).collect();
        assert_eq!(search_words(&many).len(), QUERY_WORDS_MAX);
        assert_eq!(search_words(&"x".repeat(100))[0].chars().count(), QUERY_WORD_CHARS_MAX);
    }
}
