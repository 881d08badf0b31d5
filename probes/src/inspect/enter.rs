//! The two hidden stages that collect the inside view of a process that
//! boxwatch did not start, by entering its namespaces with setns(2).
//!
//! `boxwatch __boxwatch-inspect-enter <pid> <start-time>` (a fresh,
//! single-threaded process) opens the target's namespace files, checks
//! that the PID still belongs to the same process (its start time), joins
//! every namespace of the target that differs from its own except the
//! mount namespace (user first, then ipc, uts, net, cgroup; pid and time
//! take effect for children only), and starts
//! `boxwatch __boxwatch-inspect-collect <mnt-fd>` from the host's
//! filesystem, so the binary and its libraries come from the host whatever
//! the container's root holds. That child is born in the target's pid and
//! time namespaces; it joins the mount namespace last (through the fd the
//! enter stage left open for it), collects [`crate::inside::collect`] and
//! prints it as JSON. Nothing is written in the target: the collector is
//! a short-lived extra process in its namespaces, in none of its cgroups.

use crate::inside;
use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::process::ExitCode;

/// `argv[1]` of the stage that joins the target's namespaces.
pub const ENTER_ARG: &str = "__boxwatch-inspect-enter";
/// `argv[1]` of the stage that joins its mount namespace and collects.
pub const COLLECT_ARG: &str = "__boxwatch-inspect-collect";

/// Namespaces joined by the enter stage, in order (user first: the others
/// may belong to it). The mount namespace is joined by the collector.
const JOIN_ORDER: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("time", CloneFlags::from_bits_retain(libc_clone_newtime())),
];

/// CLONE_NEWTIME (0x80), which nix 0.29 has no flag for.
const fn libc_clone_newtime() -> i32 {
    0x0000_0080
}

/// Runs a hidden inspect stage if this process is one; None otherwise.
/// Call first in `main`, before any thread exists.
pub fn dispatch() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let arg = |i: usize| args.get(i).and_then(|a| a.to_str());
    match arg(1) {
        Some(ENTER_ARG) => Some(match (parse(arg(2)), parse(arg(3))) {
            (Some(pid), Some(start)) => enter(pid as i32, start),
            _ => fail("usage", "__boxwatch-inspect-enter <pid> <start-time>"),
        }),
        Some(COLLECT_ARG) => Some(match parse(arg(2)) {
            Some(fd) => collect(fd as i32),
            None => fail("usage", "__boxwatch-inspect-collect <mnt-fd>"),
        }),
        _ => None,
    }
}

fn parse(a: Option<&str>) -> Option<u64> {
    a?.parse().ok()
}

fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("{what}: {e}");
    ExitCode::from(125)
}

/// The inode of namespace `ns` of `pid` (`self` for this process).
fn ns_inode(pid: &str, ns: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

fn enter(pid: i32, start: u64) -> ExitCode {
    let target = pid.to_string();
    let mut joins: Vec<(&str, CloneFlags, File)> = Vec::new();
    for (ns, flag) in JOIN_ORDER {
        let (Some(theirs), Some(ours)) = (ns_inode(&target, ns), ns_inode("self", ns)) else {
            continue; // a namespace this kernel does not have
        };
        if theirs == ours {
            continue;
        }
        match File::open(format!("/proc/{pid}/ns/{ns}")) {
            Ok(f) => joins.push((ns, flag, f)),
            Err(e) => return fail(&format!("opening /proc/{pid}/ns/{ns}"), e),
        }
    }
    // Left open across exec for the collector (no O_CLOEXEC).
    let mnt = match nix::fcntl::open(
        format!("/proc/{pid}/ns/mnt").as_str(),
        OFlag::O_RDONLY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return fail(&format!("opening /proc/{pid}/ns/mnt"), e),
    };
    // The files are open: if the PID still has its start time, they are
    // the namespaces of the process the caller meant.
    if super::start_time(pid) != Some(start) {
        return fail(
            "the target",
            format!("process {pid} exited while boxwatch was entering it"),
        );
    }
    let joined_user = joins.iter().any(|(ns, _, _)| *ns == "user");
    for (ns, flag, f) in &joins {
        if let Err(e) = setns(f, *flag) {
            return fail(&format!("setns into the {ns} namespace of {pid}"), e);
        }
    }
    if joined_user {
        // Root of the target's user namespace, as nsenter does, so the
        // collector keeps its capabilities across exec.
        let root = nix::unistd::Gid::from_raw(0);
        let uroot = nix::unistd::Uid::from_raw(0);
        if let Err(e) = nix::unistd::setresgid(root, root, root)
            .and_then(|()| nix::unistd::setgroups(&[]))
            .and_then(|()| nix::unistd::setresuid(uroot, uroot, uroot))
        {
            return fail("becoming root in the target's user namespace", e);
        }
    }
    let status = std::process::Command::new("/proc/self/exe")
        .arg(COLLECT_ARG)
        .arg(mnt.to_string())
        .stdin(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) => ExitCode::from(s.code().unwrap_or(125).clamp(0, 255) as u8),
        Err(e) => fail("starting the collector", e),
    }
}

fn collect(mnt_fd: i32) -> ExitCode {
    let mnt = match File::open(format!("/proc/self/fd/{mnt_fd}")) {
        Ok(f) => f,
        Err(e) => return fail("reopening the mount namespace", e),
    };
    let ours = ns_inode("self", "mnt");
    let theirs = mnt.metadata().ok().map(|m| m.ino());
    if theirs != ours {
        if let Err(e) = setns(&mnt, CloneFlags::CLONE_NEWNS) {
            return fail("setns into the mount namespace", e);
        }
    }
    if let Err(e) = std::env::set_current_dir("/") {
        return fail("chdir / in the container", e);
    }
    let mut view = inside::collect();
    // This collector is not part of the container: leave it out.
    let me = view.pid;
    view.pids.retain(|p| *p != me);
    match serde_json::to_string(&view) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => fail("serialising the inside view", e),
    }
}
