//! Herald's domain: what a messaging server does, independent of any wire protocol.
//!
//! - [`model`]: plain data (users, messages, dialogs, box updates).
//! - [`store`]: one fallible storage trait per concern.
//! - [`bus`]: the event bus trait and its in-process implementation.
//! - [`auth`], [`password`], [`accounts`], [`messages`]: the services.
//! - [`error`]: typed errors, mapped to the wire by `herald-rpc`.

pub mod accounts;
pub mod auth;
pub mod bus;
pub mod clock;
pub mod contacts;
pub mod dialogs;
pub mod error;
pub mod files;
pub mod forward;
pub mod groups;
pub mod ids;
pub mod limits;
pub mod messages;
pub mod model;
pub mod password;
pub mod photos;
pub mod presence;
pub mod privacy;
pub mod qr;
pub mod reactions;
pub mod schedule;
pub mod search;
pub mod store;
pub mod stripped;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod text;
pub mod ttl;

pub use error::{DomainError, Result};
