//! Termination signals turned into a flag, with no signal handler and no
//! unsafe: SIGINT, SIGTERM and SIGHUP are blocked in the (still
//! single-threaded) process, so every thread started later inherits the
//! mask, and one thread waits for them. The long runs that make things
//! (`boxwatch scenarios`, `cargo xtask bench`) check the flag in their
//! loops and unwind, so their guards remove what they made.

use crate::error::{Error, Result};
use nix::sys::signal::{SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What [`watch_signals`] does when a signal arrives.
#[derive(Debug, Clone, Copy)]
pub struct OnSignal {
    /// Printed (to stderr) at the first signal, which sets the flag.
    pub message: &'static str,
    /// `Some(code)`: a second signal exits at once with `code`, leaving
    /// what is left to the next run's cleanup. `None`: later signals are
    /// ignored (the run removes what it made however often it is asked).
    pub exit_on_second: Option<i32>,
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (call it before
/// any other thread exists) and starts a thread that waits for them: the
/// first sets `flag` and prints `on.message`, a second does what
/// `on.exit_on_second` says. Child processes inherit the blocked mask
/// (std's `Command` keeps it); the runtime and the exporter reset it.
pub fn watch_signals(flag: Arc<AtomicBool>, on: OnSignal) -> Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().map_err(|source| Error::Sys {
        step: "blocking termination signals",
        source,
    })?;
    std::thread::spawn(move || {
        while set.wait().is_ok() {
            if !flag.swap(true, Ordering::SeqCst) {
                eprintln!("{}", on.message);
            } else if let Some(code) = on.exit_on_second {
                std::process::exit(code);
            }
        }
    });
    Ok(())
}
