//! The container's private root: built on a mount point in the container's
//! own mount namespace, then entered with pivot_root (or, where the current
//! root cannot be pivoted, as on an initramfs, by moving it over / and
//! chroot). The host's root is unmounted and invisible afterwards.

use crate::message::{STEP_EXEC_MISSING, STEP_EXEC_PERMISSION};
use crate::spec::RootfsSpec;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{chdir, chroot, pivot_root};
use std::path::{Path, PathBuf};

/// Where the boxwatch binary is visible inside every container.
pub const CONTAINER_EXE: &str = "/.boxwatch/boxwatch";

/// Host directories the minimal root binds read-only (symlinks are copied).
const HOST_DIRS: [&str; 8] = [
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
];
/// Device nodes bound from the host into the container's /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The masked paths of `runc spec` (Docker's, and /proc/scsi): bound over
/// with /dev/null (files) or an empty read-only tmpfs (directories) by the
/// OCI runtime.
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// The read-only paths of `runc spec` and Docker.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A failed setup step, sent back to the parent.
#[derive(Debug)]
pub struct StepError {
    pub step: &'static str,
    pub message: String,
}

pub type StepResult<T = ()> = Result<T, StepError>;

pub fn step<E: std::fmt::Display>(
    step: &'static str,
    what: impl std::fmt::Display,
) -> impl FnOnce(E) -> StepError {
    move |e| StepError {
        step,
        message: format!("{what}: {e}"),
    }
}

/// How the new root was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnterMethod {
    PivotRoot,
    ChrootFallback,
}

/// What the root is built from.
pub struct RootPlan<'a> {
    pub rootfs: &'a RootfsSpec,
    /// An empty directory to mount the new root on.
    pub mount_point: &'a Path,
    /// The boxwatch binary on the host, bound at [`CONTAINER_EXE`].
    pub exe: &'a Path,
    pub hostname: Option<&'a str>,
    /// An lxcfs mount whose files are bound over /proc and /sys.
    pub lxcfs: Option<&'a Path>,
}

/// Stops mount events from leaking between the container and the host.
pub fn make_private() -> StepResult {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step("rootfs", "making / private"))
}

/// Builds the new root at `plan.mount_point`.
pub fn build(plan: &RootPlan) -> StepResult {
    let root = plan.mount_point;
    match plan.rootfs {
        RootfsSpec::Minimal => {
            mount_fs(
                "tmpfs",
                root,
                "tmpfs",
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "mode=0755",
            )?;
            for d in HOST_DIRS {
                copy_host_entry(Path::new("/").join(d).as_path(), &root.join(d))?;
            }
            for d in ["root", "run", "var", "home"] {
                mkdir(&root.join(d))?;
            }
            mount_tmp(&root.join("tmp"))?;
        }
        RootfsSpec::Dir(dir) => {
            bind(dir, root, false)?;
        }
        RootfsSpec::Host => unreachable!("the host rootfs is not built"),
    }
    mount_proc(&root.join("proc"))?;
    mount_sys(&root.join("sys"))?;
    mount_dev(&root.join("dev"))?;
    mask_kernel_paths(root)?;
    mount_boxwatch_dir(root, plan.exe, plan.hostname)?;
    if let Some(lxcfs) = plan.lxcfs {
        bind_lxcfs(lxcfs, root)?;
    }
    Ok(())
}

/// Binds lxcfs's virtualized files over the fresh /proc and /sys of the
/// root at `root` (`/` for a container on the host's root): each one the
/// lxcfs mount and the root both have ([`crate::lxcfs::FILES`]).
pub fn bind_lxcfs(lxcfs: &Path, root: &Path) -> StepResult {
    for file in crate::lxcfs::FILES {
        let (src, dst) = (lxcfs.join(file), root.join(file));
        if src.exists() && dst.exists() {
            mount(
                Some(&src),
                &dst,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(step(
                "lxcfs",
                format!("binding {} over {}", src.display(), dst.display()),
            ))?;
        }
    }
    Ok(())
}

/// Enters the new root and drops the old one.
pub fn enter(root: &Path) -> StepResult<EnterMethod> {
    chdir(root).map_err(step("pivot_root", format!("chdir {}", root.display())))?;
    match pivot_root(".", ".") {
        Ok(()) => {
            // The old root now sits on top of the new one at "/": detach it.
            umount2(".", MntFlags::MNT_DETACH)
                .map_err(step("pivot_root", "unmounting the old root"))?;
            chdir("/").map_err(step("pivot_root", "chdir /"))?;
            Ok(EnterMethod::PivotRoot)
        }
        Err(nix::errno::Errno::EINVAL) => {
            // The current root cannot be pivoted (initramfs/rootfs): move the
            // new root over it and chroot; the old root is hidden below.
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .map_err(step("chroot", "moving the new root over /"))?;
            chroot(".").map_err(step("chroot", "chroot ."))?;
            chdir("/").map_err(step("chroot", "chdir /"))?;
            Ok(EnterMethod::ChrootFallback)
        }
        Err(e) => Err(step("pivot_root", "pivot_root")(e)),
    }
}

fn mkdir(p: &Path) -> StepResult {
    match std::fs::create_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) => Err(step("rootfs", format!("creating {}", p.display()))(e)),
    }
}

fn mount_fs(source: &str, target: &Path, fstype: &str, flags: MsFlags, data: &str) -> StepResult {
    mkdir(target)?;
    mount(Some(source), target, Some(fstype), flags, Some(data)).map_err(step(
        "rootfs",
        format!("mounting {fstype} on {}", target.display()),
    ))
}

fn mount_tmp(target: &Path) -> StepResult {
    mount_fs(
        "tmpfs",
        target,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777",
    )
}

/// The mount flags of the filesystem at `p` that a read-only remount of a
/// bind of it must keep (the kernel refuses to clear locked flags).
fn locked_flags(p: &Path) -> MsFlags {
    let Ok(st) = statvfs(p) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Binds `src` at `dst` (recursively), read-only if asked.
fn bind(src: &Path, dst: &Path, read_only: bool) -> StepResult {
    let what = format!("binding {} at {}", src.display(), dst.display());
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(step("rootfs", &what))?;
    if read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(src);
        mount(None::<&str>, dst, None::<&str>, flags, None::<&str>)
            .map_err(step("rootfs", format!("{what} read-only")))?;
    }
    Ok(())
}

/// Recreates a host top-level entry in the new root: a symlink is copied
/// (merged-/usr systems), a directory is bound read-only, an absent one skipped.
fn copy_host_entry(host: &Path, dst: &Path) -> StepResult {
    match std::fs::symlink_metadata(host) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::read_link(host)
                .map_err(step("rootfs", format!("reading link {}", host.display())))?;
            std::os::unix::fs::symlink(&target, dst)
                .map_err(step("rootfs", format!("linking {}", dst.display())))
        }
        Ok(m) if m.is_dir() => {
            mkdir(dst)?;
            bind(host, dst, true)
        }
        _ => Ok(()),
    }
}

/// A fresh procfs (it shows the container's PID namespace). Without a PID
/// namespace of its own, a user namespace may not mount one: bind the host's.
fn mount_proc(target: &Path) -> StepResult {
    mkdir(target)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(Some("proc"), target, Some("proc"), flags, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => bind(Path::new("/proc"), target, false),
        Err(e) => Err(step(
            "rootfs",
            format!("mounting proc on {}", target.display()),
        )(e)),
    }
}

/// What runc and crun do with `maskedPaths` and `readonlyPaths`: the
/// masked files get /dev/null bound over them, the masked directories an
/// empty read-only tmpfs; the read-only paths are bound read-only onto
/// themselves. Paths this kernel does not have are skipped.
fn mask_kernel_paths(root: &Path) -> StepResult {
    for p in MASKED_PATHS {
        let at = root.join(p.trim_start_matches('/'));
        match std::fs::symlink_metadata(&at) {
            Err(_) => continue,
            Ok(m) if m.is_dir() => mount_fs(
                "tmpfs",
                &at,
                "tmpfs",
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                "size=0",
            )?,
            Ok(_) => mount(
                Some("/dev/null"),
                &at,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(step("rootfs", format!("masking {p} with /dev/null")))?,
        }
    }
    for p in READONLY_PATHS {
        let at = root.join(p.trim_start_matches('/'));
        if at.exists() {
            bind(&at, &at, true)?;
        }
    }
    Ok(())
}

/// A fresh /proc over the host's, for a container on the host rootfs.
pub fn remount_proc() -> StepResult {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>)
        .map_err(step("rootfs", "mounting proc on /proc"))
}

/// A read-only sysfs (it shows the container's network namespace).
fn mount_sys(target: &Path) -> StepResult {
    mkdir(target)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    match mount(Some("sysfs"), target, Some("sysfs"), flags, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => bind(Path::new("/sys"), target, true),
        Err(e) => Err(step(
            "rootfs",
            format!("mounting sysfs on {}", target.display()),
        )(e)),
    }
}

/// A minimal /dev: a tmpfs with the harmless host devices bound in, a private
/// devpts, /dev/shm and the usual symlinks.
fn mount_dev(dev: &Path) -> StepResult {
    // nodev: no device node made in /dev opens (the bound ones are mounts
    // of their own); the builtin runtime has no device cgroup on v2.
    mount_fs(
        "tmpfs",
        dev,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        "mode=0755",
    )?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if !host.exists() {
            continue;
        }
        let node = dev.join(name);
        std::fs::File::create(&node)
            .map_err(step("rootfs", format!("creating {}", node.display())))?;
        bind(&host, &node, false)?;
    }
    let pts = dev.join("pts");
    mkdir(&pts)?;
    let pts_flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    if mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        pts_flags,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .is_ok()
    {
        link("pts/ptmx", &dev.join("ptmx"))?;
    }
    mount_fs(
        "shm",
        &dev.join("shm"),
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "mode=1777",
    )?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        link(target, &dev.join(name))?;
    }
    Ok(())
}

fn link(target: &str, at: &Path) -> StepResult {
    std::os::unix::fs::symlink(target, at)
        .map_err(step("rootfs", format!("linking {}", at.display())))
}

/// `/.boxwatch`: a small tmpfs holding the boxwatch binary (read-only bind)
/// and the container's /etc/hostname, so a user rootfs is not written to.
fn mount_boxwatch_dir(root: &Path, exe: &Path, hostname: Option<&str>) -> StepResult {
    let dir = root.join(".boxwatch");
    mount_fs(
        "tmpfs",
        &dir,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=0755,size=1m",
    )?;
    let target = dir.join("boxwatch");
    std::fs::File::create(&target)
        .map_err(step("rootfs", format!("creating {}", target.display())))?;
    bind(exe, &target, true)?;
    if let Some(h) = hostname {
        let etc_hostname = root.join("etc/hostname");
        if etc_hostname.is_file() {
            let ours = dir.join("hostname");
            std::fs::write(&ours, format!("{h}\n"))
                .map_err(step("rootfs", "writing /etc/hostname"))?;
            bind(&ours, &etc_hostname, true)?;
        }
    }
    Ok(())
}

/// Finds `cmd` in the (already entered) container root: a path is taken as
/// is, a bare name is looked up in `path_var`. The error says whether the
/// command is missing (exit 127) or not executable (exit 126).
pub fn resolve_command(cmd: &str, path_var: &str) -> StepResult<PathBuf> {
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![PathBuf::from(cmd)]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(cmd))
            .collect()
    };
    let mut found_not_exec = None;
    for c in &candidates {
        if c.is_dir() && cmd.contains('/') {
            return Err(StepError {
                step: STEP_EXEC_PERMISSION,
                message: format!("{} is a directory, not an executable file", c.display()),
            });
        }
        if !c.is_file() {
            continue;
        }
        if nix::unistd::access(c.as_path(), nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok(c.clone());
        }
        found_not_exec.get_or_insert(c.clone());
    }
    Err(match found_not_exec {
        Some(p) => StepError {
            step: STEP_EXEC_PERMISSION,
            message: format!("{} is not executable", p.display()),
        },
        None if cmd.contains('/') => StepError {
            step: STEP_EXEC_MISSING,
            message: format!("{cmd} does not exist in the container's root"),
        },
        None => StepError {
            step: STEP_EXEC_MISSING,
            message: format!("{cmd} was not found in PATH={path_var} inside the container"),
        },
    })
}
