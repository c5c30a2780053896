//! Password hashing on its own threads, at the lowest CPU priority.
//!
//! Argon2id at OWASP cost takes ~19 MiB and tens of milliseconds of a core
//! per login. `api.password_hashers` threads do it (one by default), each
//! at `SCHED_IDLE` (and `nice 19`) and resting as long as it worked after
//! each hash (at most half a core: Argon2id's memory traffic slows the
//! other core's requests even when the CPU is yielded to them), each with
//! its Argon2 memory kept between hashes. A storm of logins — wrong
//! passwords included, since unknown users are hashed too — queues here and
//! leaves the CPU to the requests a trading loop makes. The queue is bounded: past it a login is refused at
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
                let mut ws = secrets::Workspace::default();
                loop {
                    let job = rx.lock().recv();
                    let started = std::time::Instant::now();
                    match job {
                        Ok(Job::Verify { password, phc, reply }) => {
                            let _ = reply.send(ws.verify(&password, &phc));
                        }
                        Ok(Job::Hash { password, reply }) => {
                            let _ = reply.send(ws.hash(&password));
                        }
                        Err(_) => return,
                    }
                    // at most half a core per hasher, whatever the storm:
                    // Argon2id's memory traffic slows the other core's
                    // work even when this thread yields the CPU to it
                    std::thread::sleep(started.elapsed());
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

/// `SCHED_IDLE` for the calling thread — it runs only when nothing else
/// wants the core — and `nice 19` besides (what counts where `SCHED_IDLE`
/// is refused, and what `ps` shows).
fn lowest_priority() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), thread_priority::ThreadPriority::Min, idle) {
        tracing::warn!(error = ?e, "cannot move the password hashing thread to SCHED_IDLE");
    }
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
                let fields: Vec<&str> = after.split_whitespace().collect();
                let nice: i32 = fields[16].parse().unwrap();
                let policy: u32 = fields[38].parse().unwrap();
                assert_eq!(nice, 19);
                assert_eq!(policy, 5, "SCHED_IDLE");
                found = true;
            }
        }
        assert!(found, "no hashing thread");
    }
}
