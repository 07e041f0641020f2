//! The caller of a use case: the key it presented, its user, and the principal the
//! authorizer sees ([`crate::session::authenticate`] makes one).

use portcullis_core::authz::Principal;
use portcullis_store::{ApiKey, User};

/// An authenticated caller: the key used and its user (with the account's type and state).
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    pub user: User,
    pub principal: Principal,
    /// The store's auth epoch this caller was authenticated at (what the verified caches
    /// compare: a write since makes what was learnt about the caller stale).
    pub epoch: u64,
}
