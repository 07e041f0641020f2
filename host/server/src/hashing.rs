//! Password hashing off the async runtime, on exactly as many threads as there are cores.
//!
//! argon2id with OWASP's parameters needs 19 MiB per hash. A semaphore around
//! `spawn_blocking` bounds how many run at once but not on how many threads: the
//! allocator keeps each thread's buffer in that thread's arena, so hundreds of blocking
//! threads meant hundreds of MiB resident. A fixed pool keeps it at cores × 19 MiB, and a
//! bounded queue answers 503 instead of queueing without end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

pub struct HashPool {
    tx: Mutex<mpsc::Sender<Job>>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// The queue is full.
#[derive(Debug)]
pub struct Busy;

impl HashPool {
    pub fn new(threads: usize, queue_limit: usize) -> HashPool {
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
                    job();
                })
                .expect("spawn a hashing thread");
        }
        HashPool {
            tx: Mutex::new(tx),
            queued: Arc::new(AtomicUsize::new(0)),
            limit: queue_limit,
        }
    }

    /// Run `f` on a hashing thread; `Err(Busy)` when `queue_limit` jobs are already queued
    /// or running.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.limit {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let queued = self.queued.clone();
        let job: Job = Box::new(move || {
            let value = f();
            queued.fetch_sub(1, Ordering::SeqCst);
            let _ = done.send(value);
        });
        if self.tx.lock().expect("hash queue lock").send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        result.await.map_err(|_| Busy)
    }
}
