//! The few system calls the workloads need that have no safe wrapper. All
//! of this crate's `unsafe` is here.

use nix::errno::Errno;

/// The result of [`fork`].
pub enum Forked {
    Child,
    Parent(i32),
}

/// fork(2). Only called by single-threaded workloads (fork bomb, orphan
/// maker), whose children do nothing but sleep, fork and [`exit_now`].
pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: the callers are single-threaded, so the child cannot inherit
    // a lock held by another thread; the child only calls async-signal-safe
    // functions (fork, nanosleep, _exit, write).
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
    }
}

/// _exit(2): ends a forked child without running the parent's exit
/// handlers or flushing its buffers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// settimeofday(2) with the given realtime reading. The caller passes the
/// time it just read, so a call that succeeds moves the clock by the
/// microseconds spent in between, never more.
pub fn settimeofday(secs: i64, micros: i64) -> Result<(), Errno> {
    let tv = libc::timeval {
        tv_sec: secs as libc::time_t,
        tv_usec: micros as libc::suseconds_t,
    };
    // SAFETY: tv is a valid timeval; a null timezone is allowed.
    let rc = unsafe { libc::settimeofday(&tv, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}
