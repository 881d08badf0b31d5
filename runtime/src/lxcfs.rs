//! lxcfs-style /proc virtualization, applied by boxwatch: a private lxcfs
//! instance whose files (`FILES`) the runtime binds over a container's
//! /proc and /sys (see [`crate::ContainerSpec::lxcfs`]), so that
//! `/proc/meminfo`, `/proc/cpuinfo`, `/proc/stat`, `/proc/uptime` and the
//! online CPU list show the container's limits instead of the host's.
//!
//! [`Lxcfs::start`] runs `lxcfs --foreground` on a mount point in
//! boxwatch's state directory from a keeper thread that lives as long as
//! the handle; the daemon gets SIGTERM when that thread ends (the handle is
//! dropped, or boxwatch dies, even by SIGKILL), and lxcfs unmounts itself
//! on SIGTERM. Dropping the handle also makes sure the mount is gone and
//! removes the mount point; [`crate::cleanup`] unmounts what a run that
//! died anyway left.

use crate::error::{Error, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The files lxcfs virtualizes, relative to its mount point and to the
/// container's root alike.
pub(crate) const FILES: [&str; 8] = [
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/loadavg",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "sys/devices/system/cpu/online",
];

/// How long lxcfs may take to mount before starting it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to unmount itself after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `dir` looks like an lxcfs mount (it serves `proc/meminfo`).
pub(crate) fn is_lxcfs_dir(dir: &Path) -> bool {
    dir.join("proc/meminfo").is_file()
}

/// The lxcfs binary, or None when it is not installed.
pub fn binary() -> Option<PathBuf> {
    crate::find_in_path("lxcfs")
}

/// Why lxcfs cannot be started on this host, if it cannot (for a scenario
/// that needs it: `unsupported`, with the fix).
pub fn unavailable() -> Option<String> {
    if binary().is_none() {
        return Some("lxcfs is not installed (apt-get install lxcfs)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse is missing: lxcfs is a FUSE filesystem (modprobe fuse)".into());
    }
    None
}

/// A running lxcfs instance boxwatch started.
#[derive(Debug)]
pub struct Lxcfs {
    mount_point: PathBuf,
    pid: i32,
    stop: Option<Sender<()>>,
    keeper: Option<JoinHandle<()>>,
}

impl Lxcfs {
    /// Starts lxcfs on `mount_point` (created; it must be in boxwatch's
    /// state directory, named `.../<run-id>/lxcfs`, for the clean-up of
    /// dead runs to find it) and returns once it serves its files.
    pub fn start(mount_point: &Path) -> Result<Lxcfs> {
        let fail = |why: String| Error::Lxcfs {
            mount_point: mount_point.to_path_buf(),
            why,
        };
        let bin = binary().ok_or_else(|| fail(unavailable().unwrap_or_default()))?;
        // Another boxwatch ending may remove the shared state directory
        // between two mkdirs: retry as every shared directory does.
        let io = |step: &str| {
            let step = step.to_string();
            move |source| Error::LxcfsIo {
                mount_point: mount_point.to_path_buf(),
                step,
                source,
            }
        };
        crate::shared_dir::create_dir_all_retrying(mount_point)
            .map_err(io("creating the mount point"))?;
        let (ready_tx, ready_rx) = channel();
        let (stop_tx, stop_rx) = channel();
        let mp = mount_point.to_path_buf();
        let keeper = std::thread::Builder::new()
            .name("lxcfs-keeper".into())
            .spawn(move || keep(&bin, &mp, ready_tx, stop_rx))
            .map_err(io("starting its keeper thread"))?;
        match ready_rx.recv() {
            Ok(Ok(pid)) => Ok(Lxcfs {
                mount_point: mount_point.to_path_buf(),
                pid,
                stop: Some(stop_tx),
                keeper: Some(keeper),
            }),
            Ok(Err(e)) => {
                let _ = keeper.join();
                Err(e)
            }
            Err(_) => {
                let _ = keeper.join();
                Err(fail("its keeper thread ended before lxcfs was up".into()))
            }
        }
    }

    /// The mount point: give it to [`crate::ContainerSpec::lxcfs`].
    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// The lxcfs daemon's PID.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl Drop for Lxcfs {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(k) = self.keeper.take() {
            let _ = k.join();
        }
    }
}

/// The keeper thread: starts lxcfs, reports its PID once the mount
/// serves files (or why not), waits to be told to stop (the sender is
/// dropped), then stops it and removes what it left.
fn keep(bin: &Path, mount_point: &Path, ready: Sender<Result<i32, Error>>, stop: Receiver<()>) {
    let log = mount_point.with_extension("log");
    let mut child = match spawn(bin, mount_point, &log) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            remove_leftovers(mount_point, &log);
            return;
        }
    };
    let pid = child.id() as i32;
    match wait_until_serving(&mut child, mount_point, &log) {
        Ok(()) => {
            let _ = ready.send(Ok(pid));
            // Blocks until the handle is dropped (its sender with it).
            let _ = stop.recv();
        }
        Err(why) => {
            let _ = ready.send(Err(Error::Lxcfs {
                mount_point: mount_point.to_path_buf(),
                why,
            }));
        }
    }
    stop_child(&mut child);
    remove_leftovers(mount_point, &log);
}

fn spawn(bin: &Path, mount_point: &Path, log: &Path) -> Result<Child, Error> {
    let io = |step: String| {
        move |source| Error::LxcfsIo {
            mount_point: mount_point.to_path_buf(),
            step,
            source,
        }
    };
    let log_file = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
    let err_file = log_file
        .try_clone()
        .map_err(io(format!("duplicating {}", log.display())))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--foreground")
        // CPU views (cpuinfo, stat, the online list) follow the CPU quota
        // as well as the cpuset.
        .arg("--enable-cfs")
        .arg("--pidfile")
        .arg(mount_point.with_extension("pid"))
        .arg(mount_point)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    crate::sys::die_with_spawning_thread(&mut cmd, Signal::SIGTERM);
    cmd.spawn()
        .map_err(io(format!("starting {}", bin.display())))
}

fn wait_until_serving(child: &mut Child, mount_point: &Path, log: &Path) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if is_mounted(mount_point) && is_lxcfs_dir(mount_point) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "lxcfs exited ({status}) before it mounted: {}",
                log_tail(log)
            ));
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "lxcfs did not mount within {} s: {}",
                START_TIMEOUT.as_secs(),
                log_tail(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM (lxcfs unmounts itself), SIGKILL if it does not end in time.
fn stop_child(child: &mut Child) {
    // Our own child, ended by PID.
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Unmounts the mount point if lxcfs did not, and removes it with the log
/// and pid files.
pub(crate) fn remove_leftovers(mount_point: &Path, log: &Path) {
    if is_mounted(mount_point) {
        let _ = nix::mount::umount2(mount_point, nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = std::fs::remove_dir(mount_point);
    let _ = std::fs::remove_file(log);
    let _ = std::fs::remove_file(mount_point.with_extension("pid"));
}

/// Whether `dir` is a mount point in this process's mount table.
pub fn is_mounted(dir: &Path) -> bool {
    mount_points().iter().any(|m| m == dir)
}

/// Every mount point of this process's mount namespace.
pub(crate) fn mount_points() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| {
            t.lines()
                .filter_map(crate::cgroup::mounts::parse_mountinfo_line)
                .map(|l| PathBuf::from(l.mount_point))
                .collect()
        })
        .unwrap_or_default()
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" / ");
    if tail.is_empty() {
        "it printed nothing".into()
    } else {
        format!("it said: {tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_sees_its_root_mounted() {
        assert!(is_mounted(Path::new("/")));
        assert!(!is_mounted(Path::new("/no/such/mount/point")));
    }
}
