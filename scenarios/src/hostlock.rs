//! Measurements must not overlap across boxwatch processes either: two CI
//! jobs, or a developer's run next to a test, on one host would spoil each
//! other's CPU figures. Every scenario holds a lock on one host-wide file,
//! shared for ordinary scenarios and exclusive for those that run alone, so
//! the in-process rule (`schedule`) holds between processes too.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

/// The lock file (root-owned; without permission to open it, no lock).
pub const LOCK_PATH: &str = "/run/boxwatch-measure.lock";

/// Held for the length of a scenario; released when dropped.
pub struct HostLock {
    _lock: Option<Flock<File>>,
}

/// Takes the host-wide lock on `path`: exclusive for a scenario that runs
/// alone, shared otherwise. Waits while another process holds it in a
/// conflicting way, unless `stop()` says to give up. A lock file that
/// cannot be opened gives no lock (and no protection across processes).
pub fn acquire(path: &Path, exclusive: bool, stop: impl Fn() -> bool) -> HostLock {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o644)
        .open(path);
    let Ok(mut file) = file else {
        return HostLock { _lock: None };
    };
    let arg = if exclusive {
        FlockArg::LockExclusiveNonblock
    } else {
        FlockArg::LockSharedNonblock
    };
    let mut told = false;
    loop {
        match Flock::lock(file, arg) {
            Ok(lock) => return HostLock { _lock: Some(lock) },
            Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
                if stop() {
                    return HostLock { _lock: None };
                }
                if !told {
                    tracing::info!(
                        "waiting for another boxwatch run on this host ({})",
                        path.display()
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
                file = f;
            }
            Err(_) => return HostLock { _lock: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn shared_locks_coexist_and_exclusive_ones_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let a = acquire(&path, false, || false);
        let b = acquire(&path, false, || false);
        assert!(a._lock.is_some() && b._lock.is_some());
        // An exclusive lock waits for both shared ones.
        let released = Arc::new(AtomicBool::new(false));
        let r = released.clone();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let t0 = Instant::now();
            let l = acquire(&p, true, || false);
            assert!(
                r.load(Ordering::SeqCst),
                "got the exclusive lock while shared ones were held"
            );
            (l._lock.is_some(), t0.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        released.store(true, Ordering::SeqCst);
        drop(a);
        drop(b);
        let (got, waited) = waiter.join().unwrap();
        assert!(got);
        assert!(waited >= Duration::from_millis(250));
    }

    #[test]
    fn a_waiter_gives_up_when_told_to_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let _held = acquire(&path, true, || false);
        let l = acquire(&path, false, || true);
        assert!(l._lock.is_none());
    }

    #[test]
    fn an_unopenable_lock_file_is_no_lock() {
        let l = acquire(Path::new("/nonexistent-dir/boxwatch.lock"), true, || false);
        assert!(l._lock.is_none());
    }
}
