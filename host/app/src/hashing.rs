//! Password hashing off the async runtime, on exactly as many threads as there are cores.
//!
//! argon2id with OWASP's parameters needs 19 MiB per hash. A semaphore around
//! `spawn_blocking` bounds how many run at once but not on how many threads: the
//! allocator keeps each thread's buffer in that thread's arena, so hundreds of blocking
//! threads meant hundreds of MiB resident. A fixed pool keeps it at cores × 19 MiB, and a
//! bounded queue answers 503 instead of queueing without end.
//!
//! The queue is shared, so each job names its *owner* (a username, or the placeholder for
//! invalid ones): one owner may have at most `per_owner` jobs queued or running, so a
//! single user hammering `PUT /v1/users/{self}/password` cannot crowd out everyone else's
//! logins. A job that panics is caught: its thread lives on and its slots are returned.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

pub struct HashPool {
    tx: Mutex<mpsc::Sender<Job>>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    owners: Arc<Mutex<HashMap<String, usize>>>,
    per_owner: usize,
}

/// Gives back a job's slots (the pool's and its owner's) when dropped: after the job ran,
/// when it panicked, or when the waiting request went away before it was queued.
struct Slot {
    queued: Arc<AtomicUsize>,
    owners: Arc<Mutex<HashMap<String, usize>>>,
    owner: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = owners.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                owners.remove(&self.owner);
            }
        }
    }
}

/// The queue is full.
#[derive(Debug)]
pub struct Busy;

impl HashPool {
    pub fn new(threads: usize, queue_limit: usize, per_owner: usize) -> HashPool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("portcullis-hash-{i}"))
                .spawn(move || loop {
                    // The lock is held only while taking a job, not while running it.
                    let job = match rx.lock().expect("hash queue lock").recv() {
                        Ok(job) => job,
                        Err(_) => return, // the pool was dropped
                    };
                    // The job catches its own panic (see `run`): the thread lives on.
                    job();
                })
                .expect("spawn a hashing thread");
        }
        HashPool {
            tx: Mutex::new(tx),
            queued: Arc::new(AtomicUsize::new(0)),
            limit: queue_limit,
            owners: Arc::new(Mutex::new(HashMap::new())),
            per_owner: per_owner.max(1),
        }
    }

    /// Run `f` on a hashing thread for `owner`; `Err(Busy)` when `queue_limit` jobs are
    /// already queued or running, or `owner` has `per_owner` of them.
    pub async fn run<T: Send + 'static>(
        &self,
        owner: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        {
            let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            let mine = owners.get(owner).copied().unwrap_or(0);
            if mine >= self.per_owner {
                return Err(Busy);
            }
            if self.queued.fetch_add(1, Ordering::SeqCst) >= self.limit {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(Busy);
            }
            owners.insert(owner.to_string(), mine + 1);
        }
        let slot = Slot {
            queued: self.queued.clone(),
            owners: self.owners.clone(),
            owner: owner.to_string(),
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            // Slots first, answer second: whoever sees the answer (or, after a panic, the
            // closed channel) sees the slots free.
            drop(slot);
            if let Ok(value) = value {
                let _ = done.send(value);
            }
        });
        if self.tx.lock().expect("hash queue lock").send(job).is_err() {
            return Err(Busy);
        }
        result.await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_owner_cannot_fill_the_shared_hashing_queue() {
        let pool = Arc::new(HashPool::new(1, 100, 2));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        // Two jobs of "mallory" hold her share (the first blocks the only thread).
        let mut held = Vec::new();
        for _ in 0..2 {
            let (pool, gate) = (pool.clone(), gate.clone());
            held.push(tokio::spawn(async move {
                pool.run("mallory", move || {
                    let _ = gate.lock().unwrap().recv();
                })
                .await
            }));
        }
        // Wait until both are counted, then a third of hers is refused at once …
        while pool.owners.lock().unwrap().get("mallory").copied() != Some(2) {
            tokio::task::yield_now().await;
        }
        assert!(pool.run("mallory", || ()).await.is_err());
        // … while another owner is queued behind her, not refused.
        let admin = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run("admin", || 7).await })
        };
        release.send(()).unwrap();
        release.send(()).unwrap();
        for h in held {
            assert!(h.await.unwrap().is_ok());
        }
        assert_eq!(admin.await.unwrap().unwrap(), 7);
        assert!(
            pool.owners.lock().unwrap().is_empty(),
            "every slot returned"
        );
    }

    #[tokio::test]
    async fn a_hashing_job_that_panics_keeps_its_thread_and_returns_its_slot() {
        let pool = HashPool::new(1, 1, 1);
        assert!(pool.run("x", || -> i32 { panic!("boom") }).await.is_err());
        // The single thread still runs jobs, and the single slot is free again.
        assert_eq!(pool.run("x", || 42).await.unwrap(), 42);
        assert_eq!(pool.queued.load(Ordering::SeqCst), 0);
    }
}
