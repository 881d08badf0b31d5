//! The few raw system calls the workloads need. The `unsafe` behind them
//! lives in the runtime crate (`runtime::raw`), with the rest of the
//! project's; this module only adapts them.

use nix::errno::Errno;

/// The result of [`fork`].
pub enum Forked {
    Child,
    Parent(i32),
}

/// fork(2). Only called by single-threaded workloads (fork bomb, orphan
/// maker), whose children do nothing but sleep, fork and [`exit_now`].
pub fn fork() -> Result<Forked, Errno> {
    match runtime::raw::fork_single_threaded()? {
        runtime::raw::ForkResult::Child => Ok(Forked::Child),
        runtime::raw::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
    }
}

/// _exit(2): ends a forked child without running the parent's exit
/// handlers or flushing its buffers.
pub fn exit_now(code: i32) -> ! {
    runtime::raw::exit_now(code)
}

/// settimeofday(2) with the given realtime reading. The caller passes the
/// time it just read, so a call that succeeds moves the clock by the
/// microseconds spent in between, never more.
pub fn settimeofday(secs: i64, micros: i64) -> Result<(), Errno> {
    runtime::raw::settimeofday(secs, micros)
}
