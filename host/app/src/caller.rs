//! The caller of a use case: the key it presented, its user, and the principal the
//! authorizer sees ([`crate::session::authenticate`] makes one).

use crate::verified::VerifiedKey;
use std::sync::Arc;

/// An authenticated caller: the key used and its user (with the account's type and state)
/// and principal — `caller.key`, `caller.user`, `caller.principal` through `Deref`, shared
/// with the verified-key cache rather than copied per request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub verified: Arc<VerifiedKey>,
    /// The store's auth epoch this caller was authenticated at (what the verified caches
    /// compare: a write since makes what was learnt about the caller stale).
    pub epoch: u64,
}

impl std::ops::Deref for Caller {
    type Target = VerifiedKey;
    fn deref(&self) -> &VerifiedKey {
        &self.verified
    }
}
