//! The directories several boxwatch processes share: `<state-dir>` (also
//! the builtin runtime's), `<state-dir>/oci`, and each runtime's state root
//! `<state-dir>/oci/<runtime>` (its `--root`).
//!
//! Each is removed by whoever finds it empty last, while another process
//! may be creating something inside. Two rules keep that safe:
//!
//! - creation retries when an empty parent vanishes half-way
//!   ([`crate::shared_dir`], as for the builtin state directory and the
//!   cgroups);
//! - a runtime's root is used only under a [`RootUse`]: a shared `flock` on
//!   the root directory itself, held by every backend (and its containers)
//!   and by the stale-run cleanup while they run `<rt> --root`. The root is
//!   removed only under an exclusive lock, that is when no other process
//!   holds it, and only when it is empty. A process that locked a root that
//!   was removed meanwhile sees it by the inode and starts over. A killed
//!   process's lock goes with it; nothing is left to clean.

use crate::error::{Error, Result};
use crate::shared_dir::{create_dir_all_retrying, ATTEMPTS};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A shared hold on a runtime's state root: while any process holds one,
/// the root is not removed. Dropping the last hold removes the root, and
/// `<state-dir>/oci` above it, if they are empty.
#[derive(Debug)]
pub struct RootUse {
    root: PathBuf,
    lock: Option<Flock<File>>,
}

impl RootUse {
    /// Creates `root` if needed and holds it.
    pub fn create(root: &Path) -> Result<RootUse> {
        match hold(root, true) {
            Ok(Some(u)) => Ok(u),
            Ok(None) => unreachable!("hold with create=true always creates"),
            Err(source) => Err(Error::Io {
                step: "creating and locking the OCI runtime's state root",
                source,
            }),
        }
    }

    /// Holds `root` if it exists; None when it does not (or cannot be
    /// opened).
    pub fn existing(root: &Path) -> Option<RootUse> {
        hold(root, false).ok().flatten()
    }

    /// The root held.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The device and inode of what `path` names now.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn hold(root: &Path, create: bool) -> std::io::Result<Option<RootUse>> {
    for _ in 0..ATTEMPTS {
        if create {
            create_dir_all_retrying(root)?;
        }
        let mut file = match File::open(root) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if create {
                    continue; // removed right after we made it
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let lock = loop {
            match Flock::lock(file, FlockArg::LockShared) {
                Ok(l) => break l,
                Err((f, Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(e.into()),
            }
        };
        let held = lock.metadata().ok().map(|m| (m.dev(), m.ino()));
        if held.is_some() && held == identity(root) {
            return Ok(Some(RootUse {
                root: root.to_path_buf(),
                lock: Some(lock),
            }));
        }
        // The directory we locked was removed (and maybe made again) while
        // we waited for the lock: start over.
        if !create && identity(root).is_none() {
            return Ok(None);
        }
    }
    Err(std::io::Error::other(format!(
        "{} kept being removed while boxwatch tried to use it",
        root.display()
    )))
}

/// Removes `root` when nothing but its owner record
/// ([`super::owner::OWNER_FILE`]) is in it; call it under the exclusive
/// lock. Whether the root is gone.
fn remove_if_only_owner(root: &Path) -> bool {
    if std::fs::remove_dir(root).is_ok() {
        return true;
    }
    let Ok(rd) = std::fs::read_dir(root) else {
        return false;
    };
    let names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
    if names != [std::ffi::OsStr::new(super::owner::OWNER_FILE)] {
        return false;
    }
    let _ = std::fs::remove_file(root.join(super::owner::OWNER_FILE));
    std::fs::remove_dir(root).is_ok()
}

impl Drop for RootUse {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else {
            return;
        };
        // Exclusive only when no other process holds the root (the upgrade
        // may drop our shared lock first: then someone else has it, fine).
        if lock.relock(FlockArg::LockExclusiveNonblock).is_ok() {
            // Fails, as it should, while the root holds container state
            // (or entries the stale-run cleanup gave up on).
            if remove_if_only_owner(&self.root) {
                if let Some(oci) = self.root.parent() {
                    let _ = std::fs::remove_dir(oci);
                }
            }
        }
        drop(lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn the_last_holder_removes_the_empty_root_and_its_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state/oci/runc");
        let a = RootUse::create(&root).unwrap();
        let b = RootUse::create(&root).unwrap();
        assert_eq!(a.root(), root);
        drop(a);
        assert!(root.is_dir(), "removed while another holder had it");
        drop(b);
        assert!(!root.exists() && !root.parent().unwrap().exists());
        assert!(tmp.path().join("state").is_dir(), "only oci/ and below");
    }

    #[test]
    fn the_owner_record_alone_does_not_keep_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("oci/runsc");
        let a = RootUse::create(&root).unwrap();
        std::fs::write(root.join(super::super::owner::OWNER_FILE), "x").unwrap();
        std::fs::create_dir(root.join(super::super::owner::GIVEN_UP_DIR)).unwrap();
        drop(a);
        assert!(root.is_dir(), "entries given up on keep the root");
        std::fs::remove_dir(root.join(super::super::owner::GIVEN_UP_DIR)).unwrap();
        drop(RootUse::existing(&root).unwrap());
        assert!(!root.exists());
    }

    #[test]
    fn a_root_holding_state_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("oci/crun");
        let a = RootUse::create(&root).unwrap();
        std::fs::create_dir(root.join("bw-1-2-0-c")).unwrap();
        drop(a);
        assert!(root.join("bw-1-2-0-c").is_dir());
        std::fs::remove_dir(root.join("bw-1-2-0-c")).unwrap();
        // An existing root can be held, and its last holder removes it.
        let b = RootUse::existing(&root).expect("the root exists");
        drop(b);
        assert!(!root.exists());
        assert!(RootUse::existing(&root).is_none());
    }

    /// Holders come and go in parallel threads (each lock is its own open
    /// file, as in separate processes): whoever holds the root always finds
    /// it there, and creating below a vanishing parent never fails.
    #[test]
    fn a_held_root_is_never_removed_under_its_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Arc::new(tmp.path().join("state/oci/runc"));
        let failed = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let root = root.clone();
                let failed = failed.clone();
                std::thread::spawn(move || {
                    for n in 0..300 {
                        let u = match RootUse::create(&root) {
                            Ok(u) => u,
                            Err(e) => {
                                eprintln!("create: {e}");
                                failed.store(true, Ordering::SeqCst);
                                return;
                            }
                        };
                        // What `runc --root` does: a container directory.
                        let c = root.join(format!("bw-{i}-{n}-0-c"));
                        if let Err(e) = std::fs::create_dir(&c) {
                            eprintln!("mkdir {}: {e}", c.display());
                            failed.store(true, Ordering::SeqCst);
                            return;
                        }
                        std::fs::remove_dir(&c).unwrap();
                        drop(u);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!failed.load(Ordering::SeqCst));
        assert!(!root.exists(), "the last holder removes the root");
    }
}
