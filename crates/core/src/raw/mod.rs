//! Durability primitives every backend and tool shares (opendal keeps its
//! service helpers in `opendal-core::raw` the same way): chosen once, with
//! their crash argument written once.
//!
//! - [`fs`]: atomic replace (temp file with a unique name, fdatasync,
//!   rename, folder fsync), appends that never leave a partial line, folder
//!   creation that is itself durable.
//! - [`lock`]: advisory `flock` locks on std's `File::lock`/`try_lock`.
//! - [`journal`]: an append-only JSON-lines journal — one file per process
//!   under an advisory lock, orphans of dead processes adopted, a torn tail
//!   cut, a durable checkpoint.
//!
//! Everything here is blocking: call it from `spawn_blocking` or a store's
//! blocking pool, never straight from an async task.

pub mod fs;
pub mod journal;
pub mod lock;

pub use fs::{
    Durability, append, create_dir_all_synced, replace_atomic, replace_many, replace_many_recycling, sync_dir,
};
pub use journal::Journal;
pub use lock::{LockFile, lock_exclusive, try_lock_exclusive};
