//! Two hidden re-executions of the boxwatch binary that the OCI backend
//! needs; [`dispatch`] recognises them first thing in `main`:
//!
//! - `boxwatch __boxwatch-oci-shim <cgroup2-mount> <runtime> <args>...` runs
//!   an OCI runtime in a private mount namespace where the cgroup2 mount of
//!   a hybrid host is unmounted. crun refuses hybrid hosts ("cgroups in
//!   hybrid mode not supported"); without the cgroup2 mount it sees a plain
//!   v1 host. The host's mount table is not changed: the namespace is a
//!   slave copy that lives as long as the runtime's process.
//! - `boxwatch __boxwatch-oci-init -- <command>...` is PID 1 of an OCI
//!   container whose spec asks for an init (what `docker run --init` does
//!   with tini): it forks the command, forwards signals to it, reaps every
//!   orphan, and exits with the command's status.

use crate::oci::bundle::OCI_INIT_ARG;
use crate::sys;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{execv, execvp, ForkResult, Pid};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

/// `argv[1]` of the mount-namespace shim.
pub const OCI_SHIM_ARG: &str = "__boxwatch-oci-shim";

/// If this process is the shim or the OCI init, runs it (the shim execs the
/// runtime, the init exits with the command's status) and returns the exit
/// code on failure; otherwise returns None at once. Call first in `main`,
/// before any thread exists.
pub fn dispatch() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some(OCI_SHIM_ARG) => Some(shim(&args[2..])),
        Some(OCI_INIT_ARG) => Some(init(&args[2..])),
        _ => None,
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("boxwatch oci shim: {what}: {e}");
    ExitCode::from(125)
}

fn cstrings(args: &[OsString]) -> Option<Vec<CString>> {
    args.iter()
        .map(|a| CString::new(a.clone().into_vec()).ok())
        .collect()
}

/// `<cgroup2-mount> <runtime> <args>...`
fn shim(args: &[OsString]) -> ExitCode {
    let (Some(hide), Some(argv)) = (args.first(), cstrings(args.get(1..).unwrap_or_default()))
    else {
        return fail(
            "usage",
            "__boxwatch-oci-shim <cgroup2-mount> <runtime> <args>...",
        );
    };
    if argv.is_empty() {
        return fail("usage", "no runtime to run");
    }
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
        return fail("unshare(CLONE_NEWNS)", e);
    }
    // A slave copy: the host's mounts still propagate in, nothing done
    // here propagates back out.
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    ) {
        return fail("making / a recursive slave", e);
    }
    if let Err(e) = umount2(hide.as_os_str(), MntFlags::MNT_DETACH) {
        return fail(&format!("unmounting {}", hide.to_string_lossy()), e);
    }
    let e = execv(&argv[0], &argv).unwrap_err();
    fail(&format!("exec {:?}", argv[0]), e)
}

/// `-- <command>...`
fn init(args: &[OsString]) -> ExitCode {
    let args = match args.first().and_then(|a| a.to_str()) {
        Some("--") => &args[1..],
        _ => args,
    };
    let Some(argv) = cstrings(args).filter(|a| !a.is_empty()) else {
        eprintln!("boxwatch init: usage: {OCI_INIT_ARG} -- <command>...");
        return ExitCode::from(125);
    };
    sys::reset_signals();
    let child = match sys::fork_single_threaded() {
        Ok(ForkResult::Child) => {
            let e = execvp(&argv[0], &argv).unwrap_err();
            eprintln!("boxwatch init: exec {:?}: {e}", argv[0]);
            let code = if e == nix::errno::Errno::ENOENT {
                127
            } else {
                126
            };
            sys::exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("boxwatch init: fork: {e}");
            return ExitCode::from(125);
        }
    };
    sys::forward_signals_to(child.as_raw());
    ExitCode::from(reap_until(child).clamp(0, 255) as u8)
}

/// Reaps children until `entry` exits; returns its code (128 + signal for
/// a killed entry, as shells do).
fn reap_until(entry: Pid) -> i32 {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == entry => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == entry => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}
