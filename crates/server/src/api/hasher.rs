//! Password hashing on its own threads, at the lowest CPU priority.
//!
//! Argon2id at OWASP cost takes ~19 MiB and tens of milliseconds of a core
//! per login. `api.password_hashers` threads do it (one by default), each
//! `nice 19`: a storm of logins — wrong passwords included, since unknown
//! users are hashed too — queues here and yields the CPU to the requests a
//! trading loop makes. The queue is bounded: past it a login is refused at
//! once (busy) instead of piling up memory and latency.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;

use super::secrets;

/// Logins waiting for a hasher before new ones are refused.
const QUEUE: usize = 64;

enum Job {
    Verify { password: String, phc: String, reply: oneshot::Sender<bool> },
    Hash { password: String, reply: oneshot::Sender<sqdata::Result<String>> },
}

/// The hashing threads.
#[derive(Debug, Clone)]
pub struct Hasher {
    tx: SyncSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Verify { .. } => "Verify",
            Job::Hash { .. } => "Hash",
        })
    }
}

/// The queue is full: try again later.
#[derive(Debug)]
pub struct Busy;

impl Hasher {
    /// Starts `threads` hashing threads (at least one).
    pub fn start(threads: usize) -> Hasher {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = std::sync::Arc::new(parking_lot::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("sqdata-hash-{i}")).spawn(move || {
                lowest_priority();
                loop {
                    let job = rx.lock().recv();
                    match job {
                        Ok(Job::Verify { password, phc, reply }) => {
                            let _ = reply.send(secrets::verify_password(&password, &phc));
                        }
                        Ok(Job::Hash { password, reply }) => {
                            let _ = reply.send(secrets::hash_password(&password));
                        }
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Hasher { tx }
    }

    fn submit(&self, job: Job) -> Result<(), Busy> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("sqdata_api_password_queue_full_total").increment(1);
                Err(Busy)
            }
            Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// Whether `password` matches the PHC string.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, Busy> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify { password: password.to_string(), phc: phc.to_string(), reply })?;
        rx.await.map_err(|_| Busy)
    }

    /// The PHC string of a new password.
    pub async fn hash(&self, password: &str) -> Result<sqdata::Result<String>, Busy> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash { password: password.to_string(), reply })?;
        rx.await.map_err(|_| Busy)
    }
}

/// `nice 19` for the calling thread (Linux: a thread id names one thread).
fn lowest_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::warn!(error = %e, "cannot lower the password hashing thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_the_threads_run_at_the_lowest_priority() {
        let h = Hasher::start(1);
        let phc = h.hash("a long enough passphrase").await.unwrap().unwrap();
        assert!(h.verify("a long enough passphrase", &phc).await.unwrap());
        assert!(!h.verify("another passphrase!!", &phc).await.unwrap());
        // the hashing thread's nice value, from /proc
        let me = std::process::id();
        let mut found = false;
        for t in std::fs::read_dir(format!("/proc/{me}/task")).unwrap().flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() == "sqdata-hash-0" {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
                let after = stat.rsplit_once(')').unwrap().1;
                let nice: i32 = after.split_whitespace().nth(16).unwrap().parse().unwrap();
                assert_eq!(nice, 19);
                found = true;
            }
        }
        assert!(found, "no hashing thread");
    }
}
