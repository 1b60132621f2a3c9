//! Herald's RPC layer. It owns the mapping between TL (layer 227) and the domain:
//! requests are decoded here, domain services are called, results and pushes are encoded
//! here. **Nothing below this crate sees a TL type.**
//!
//! - [`dispatch`]: the handler registry keyed by constructor id, and the invoke wrappers.
//! - [`handlers`]: one module per TL namespace.
//! - [`convert`]: domain ↔ TL objects.
//! - [`push`]: bus events → `Updates` pushed to sessions.
//! - [`errors`]: domain errors → `rpc_error`, in one place.

mod blank;
pub mod convert;
pub mod dispatch;
pub mod errors;
mod handlers;
pub mod push;
mod recursive;

use herald_domain::accounts::AccountService;
use herald_domain::auth::AuthService;
use herald_domain::clock::Clock;
use herald_domain::messages::MessageService;
use herald_domain::model::{ClientInfo, UserId};
use herald_domain::store::AuthKeyStore;
use std::sync::{Arc, Mutex};

pub use dispatch::Dispatcher;
pub use errors::RpcError;

/// An address clients reach this DC at, for `help.getConfig`.
#[derive(Clone, Debug)]
pub struct DcAddress {
    pub id: i32,
    pub ip: String,
    pub port: u16,
}

#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub dc_id: i32,
    pub addresses: Vec<DcAddress>,
}

/// What the handlers need, and nothing else.
pub struct Services {
    pub auth: Arc<AuthService>,
    pub accounts: Arc<AccountService>,
    pub messages: Arc<MessageService>,
    pub keys: Arc<dyn AuthKeyStore>,
    pub clock: Arc<dyn Clock>,
    pub server: ServerInfo,
}

/// Per-connection state that calls can change (login binds a user, initConnection records
/// the client). Shared between the connection and the calls it makes.
#[derive(Debug, Default)]
pub struct ConnState {
    // A std Mutex: held only to copy a value, never across an await.
    user: Mutex<Option<UserId>>,
    client: Mutex<Option<ClientInfo>>,
}

impl ConnState {
    pub fn new(user: Option<UserId>, client: Option<ClientInfo>) -> Self {
        Self { user: Mutex::new(user), client: Mutex::new(client) }
    }
    pub fn user(&self) -> Option<UserId> {
        *self.user.lock().unwrap()
    }
    pub fn set_user(&self, user: Option<UserId>) {
        *self.user.lock().unwrap() = user;
    }
    pub fn client(&self) -> Option<ClientInfo> {
        self.client.lock().unwrap().clone()
    }
    pub fn set_client(&self, info: ClientInfo) {
        *self.client.lock().unwrap() = Some(info);
    }
}

/// Who is calling.
#[derive(Clone, Debug)]
pub struct CallCtx {
    pub auth_key_id: i64,
    pub conn: Arc<ConnState>,
}

impl CallCtx {
    /// The logged-in user, or 401 AUTH_KEY_UNREGISTERED.
    pub fn user(&self) -> Result<UserId, RpcError> {
        self.conn.user().ok_or_else(RpcError::unauthorized)
    }
}
