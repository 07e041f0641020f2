//! Recently verified keys and `/v1/authorize` subjects, served from memory so a busy key
//! costs no database round trip (SPEC §9).
//!
//! An entry is used only while both hold:
//! - it is younger than `auth.key_cache_ttl` (default 2 s): what *another* server or process
//!   changed (a revocation on a second server, `recover-admin-user`) is seen within that;
//! - the store's auth epoch is the one it was read at: every write this server makes to
//!   accounts, users or keys bumps the epoch (`Store::auth_epoch`), so a revocation, a
//!   deletion, a disabled account or a role change made here is seen on the very next
//!   request.
//!
//! A key record also remembers that the authorizer allowed its user `authorize.evaluate`
//! (the permission every outside decision checks first), for as long as the record itself
//! is used and only while the same plugin activation is active: a busy application key
//! costs one plugin call per decision, not two. (That permission is treated like the rest
//! of what authentication learnt: the plugin's `ttl-ms` does not apply to it, and a
//! remembered answer is neither logged again nor asked of a shadow plugin.)
//!
//! Only what the database said is cached, secrets never: a key entry holds the key's
//! record with its SHA-256 digest, and the presented key is still hashed and compared on
//! every request. Unknown key ids are not cached (each costs a lookup, as before).

use portcullis_core::authz::Principal;
use portcullis_store::{ApiKey, User};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::{Duration, Instant};

struct Entry<T> {
    value: T,
    epoch: u64,
    at: Instant,
}

/// A small map whose entries expire by age and by epoch.
struct Fresh<T> {
    map: RwLock<HashMap<String, Entry<T>>>,
}

impl<T: Clone> Fresh<T> {
    fn new() -> Self {
        Fresh {
            map: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, id: &str, epoch: u64, ttl: Duration) -> Option<T> {
        let map = self.map.read().expect("verified cache lock");
        let e = map.get(id)?;
        (e.epoch == epoch && e.at.elapsed() < ttl).then(|| e.value.clone())
    }

    fn put(&self, id: &str, value: T, epoch: u64, ttl: Duration, max: usize) {
        let mut map = self.map.write().expect("verified cache lock");
        if map.len() >= max && !map.contains_key(id) {
            map.retain(|_, e| e.at.elapsed() < ttl);
            if map.len() >= max {
                map.clear();
            }
        }
        map.insert(
            id.to_string(),
            Entry {
                value,
                epoch,
                at: Instant::now(),
            },
        );
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut T)) {
        if let Some(e) = self.map.write().expect("verified cache lock").get_mut(id) {
            f(&mut e.value);
        }
    }
}

/// A verified key as cached: what `Store::lookup_key` returned (the key, its digest, its
/// user) and the principal the authorizer sees for that user. Shared, not copied: a
/// request holds it behind an `Arc`.
#[derive(Debug)]
pub struct VerifiedKey {
    pub key: ApiKey,
    pub digest: String,
    pub user: User,
    pub principal: Arc<Principal>,
    /// The plugin activation (`Active::generation`) that allowed this key's user
    /// `authorize.evaluate`, 0 when none has: the permission lives exactly as long as this
    /// record (its epoch and TTL) and that activation, never longer than what it was decided
    /// on.
    pub may_evaluate: std::sync::atomic::AtomicU64,
    /// The same for named application policies: (policy, management activation) pairs
    /// that allowed `authorize.evaluate` on `policy/NAME`. Bounded: a caller asking more
    /// policies than [`MAX_REMEMBERED_POLICIES`] asks the authorizer again for the rest.
    may_evaluate_policies: std::sync::Mutex<Vec<(String, u64)>>,
}

/// How many per-policy permissions one verified key remembers.
pub const MAX_REMEMBERED_POLICIES: usize = 16;

impl VerifiedKey {
    pub fn new(key: ApiKey, digest: String, user: User, principal: Arc<Principal>) -> Self {
        VerifiedKey {
            key,
            digest,
            user,
            principal,
            may_evaluate: std::sync::atomic::AtomicU64::new(0),
            may_evaluate_policies: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The management activation that allowed this key's user to evaluate policy `name`.
    pub fn may_evaluate_policy(&self, name: &str) -> Option<u64> {
        let remembered = self.may_evaluate_policies.lock().expect("not poisoned");
        remembered.iter().find(|(n, _)| n == name).map(|(_, g)| *g)
    }

    /// Remember that activation `generation` allowed this key's user to evaluate `name`.
    pub fn remember_may_evaluate_policy(&self, name: &str, generation: u64) {
        let mut remembered = self.may_evaluate_policies.lock().expect("not poisoned");
        if let Some(entry) = remembered.iter_mut().find(|(n, _)| n == name) {
            entry.1 = generation;
        } else if remembered.len() < MAX_REMEMBERED_POLICIES {
            remembered.push((name.to_owned(), generation));
        }
    }
}

impl Clone for VerifiedKey {
    fn clone(&self) -> Self {
        VerifiedKey {
            may_evaluate: std::sync::atomic::AtomicU64::new(
                self.may_evaluate.load(std::sync::atomic::Ordering::Relaxed),
            ),
            may_evaluate_policies: std::sync::Mutex::new(
                self.may_evaluate_policies
                    .lock()
                    .expect("not poisoned")
                    .clone(),
            ),
            ..VerifiedKey::new(
                self.key.clone(),
                self.digest.clone(),
                self.user.clone(),
                self.principal.clone(),
            )
        }
    }
}

pub type KeyRecord = Arc<VerifiedKey>;

/// An `/v1/authorize` subject as cached: the user and its principal.
#[derive(Debug)]
pub struct Subject {
    pub user: User,
    pub principal: Arc<Principal>,
}

pub struct Verified {
    ttl: Duration,
    max_entries: usize,
    keys: Fresh<KeyRecord>,
    subjects: Fresh<Option<Arc<Subject>>>,
}

impl Verified {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Verified {
            ttl,
            max_entries,
            keys: Fresh::new(),
            subjects: Fresh::new(),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn key(&self, id: &str, epoch: u64) -> Option<KeyRecord> {
        self.enabled()
            .then(|| self.keys.get(id, epoch, self.ttl))
            .flatten()
    }

    pub fn put_key(&self, id: &str, record: KeyRecord, epoch: u64) {
        if self.enabled() {
            self.keys.put(id, record, epoch, self.ttl, self.max_entries);
        }
    }

    /// The key's `last_used_at` was just recorded: remember it, so the next request does not
    /// record it again.
    pub fn touched(&self, id: &str, at: i64) {
        self.keys
            .update(id, |v| Arc::make_mut(v).key.last_used_at = Some(at));
    }

    /// `Some(None)`: known not to exist (at `epoch`).
    pub fn subject(&self, username: &str, epoch: u64) -> Option<Option<Arc<Subject>>> {
        self.enabled()
            .then(|| self.subjects.get(username, epoch, self.ttl))
            .flatten()
    }

    pub fn put_subject(&self, username: &str, user: Option<Arc<Subject>>, epoch: u64) {
        if self.enabled() {
            self.subjects
                .put(username, user, epoch, self.ttl, self.max_entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_by_epoch_and_by_age_and_the_map_stays_bounded() {
        // A TTL no slow machine outlasts between two lines of this test …
        let v = Verified::new(Duration::from_secs(3600), 3);
        v.put_subject("a", None, 7);
        assert!(matches!(v.subject("a", 7), Some(None)));
        assert!(v.subject("a", 8).is_none(), "a newer epoch invalidates");
        // … and one that has surely passed after the sleep (a slower machine only makes
        // the entry older).
        let brief = Verified::new(Duration::from_millis(20), 3);
        brief.put_subject("a", None, 7);
        std::thread::sleep(Duration::from_millis(40));
        assert!(brief.subject("a", 7).is_none(), "too old");
        for name in ["a", "b", "c", "d", "e"] {
            v.put_subject(name, None, 1);
        }
        assert!(v.subjects.map.read().unwrap().len() <= 3);
        assert!(matches!(v.subject("e", 1), Some(None)));
        let off = Verified::new(Duration::ZERO, 3);
        off.put_subject("a", None, 1);
        assert!(off.subject("a", 1).is_none(), "ttl 0 turns the cache off");
    }
}
