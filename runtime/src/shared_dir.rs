//! Directories several boxwatch processes share and remove when they find
//! them empty: the state directory `/run/boxwatch` and what is below it,
//! the `/boxwatch` parent cgroup. Creating something inside one races with
//! another process removing the empty parent; creation starts over when
//! that happened ([`create_dir_all_retrying`], and [`pause_if_vanished`]
//! for a caller with its own creation loop, as the cgroup drivers).

use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

/// How many times a creation starts over when a parent vanished.
pub const ATTEMPTS: u32 = 100;

/// `create_dir_all(dir)`, started over (see [`pause_if_vanished`]) when
/// another process removed an empty parent half-way.
pub fn create_dir_all_retrying(dir: &Path) -> std::io::Result<()> {
    let mut attempt = 0;
    loop {
        match std::fs::create_dir_all(dir) {
            Err(e) if pause_if_vanished(&e, dir, &mut attempt) => {}
            other => return other,
        }
    }
}

/// When `e`, from creating `dir`, came from a part of it that another
/// process removed meanwhile (between two `mkdir`s: "not found"; between a
/// `mkdir` that found the directory there and the check that it is one:
/// "exists"), and fewer than [`ATTEMPTS`] were made: pauses (50 µs
/// doubling up to 3.2 ms, so as not to stay in step with a remover),
/// counts the attempt and returns true: start over.
pub fn pause_if_vanished(e: &std::io::Error, dir: &Path, attempt: &mut u32) -> bool {
    if *attempt >= ATTEMPTS || !vanished(e, dir) {
        return false;
    }
    std::thread::sleep(Duration::from_micros(50 << (*attempt).min(6)));
    *attempt += 1;
    true
}

fn vanished(e: &std::io::Error, dir: &Path) -> bool {
    match e.kind() {
        ErrorKind::NotFound => true,
        ErrorKind::AlreadyExists => dir.ancestors().any(|a| {
            !a.as_os_str().is_empty()
                && matches!(std::fs::symlink_metadata(a), Err(e) if e.kind() == ErrorKind::NotFound)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_file_in_the_way_is_an_error_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("file");
        std::fs::write(&f, "").unwrap();
        let e = create_dir_all_retrying(&f).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(create_dir_all_retrying(&f.join("below")).is_err());
    }

    #[test]
    fn creation_survives_parents_vanishing() {
        let tmp = tempfile::tempdir().unwrap();
        let base = Arc::new(tmp.path().join("run/boxwatch"));
        let stop = Arc::new(AtomicBool::new(false));
        let remover = {
            let base = base.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    // What other boxwatch processes do when they finish,
                    // every 100 µs: without the retry, some 50 to 200 of
                    // the creations below fail.
                    let _ = std::fs::remove_dir(base.join("oci"));
                    let _ = std::fs::remove_dir(&*base);
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        };
        for n in 0..2000 {
            let d = base.join(format!("{n}-1-0/c.oci"));
            create_dir_all_retrying(&d).unwrap();
            std::fs::remove_dir(&d).unwrap();
            std::fs::remove_dir(d.parent().unwrap()).unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        remover.join().unwrap();
    }
}
