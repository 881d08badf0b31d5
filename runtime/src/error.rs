//! The runtime's one error type. Every variant names the cause, and where the
//! user can do something about it, the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} {value:?}: expected {expected}")]
    InvalidValue {
        what: &'static str,
        value: String,
        expected: String,
    },

    #[error("invalid container spec: {0}")]
    InvalidSpec(String),

    #[error(
        "not running as root and user namespaces are unavailable ({reason}); \
         run boxwatch as root, or enable unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)"
    )]
    NoPrivilege { reason: String },

    #[error("lxcfs at {mount_point}: {why}")]
    Lxcfs { mount_point: PathBuf, why: String },

    #[error("no cgroup filesystem is mounted under {root}: mount cgroup2 (or the v1 controllers) there, or run boxwatch where cgroups are available")]
    NoCgroupFs { root: PathBuf },

    #[error(
        "the {controller} cgroup controller is needed for the {limit} limit but {why}; \
         drop the limit from the spec, or enable the controller \
         (v1: mount it under /sys/fs/cgroup/{controller}; v2: add +{controller} to cgroup.subtree_control of the parent)"
    )]
    MissingController {
        controller: String,
        limit: &'static str,
        why: String,
    },

    #[error(
        "the cgroup {} does not enable [{line}] for its children, and boxwatch did not make it, \
         so it does not write there: run `echo '{line}' > {}/cgroup.subtree_control`, \
         or pass a --cgroup-parent that is delegated to boxwatch",
        dir.display(),
        dir.display()
    )]
    NotDelegated { dir: PathBuf, line: String },

    #[error(
        "{file} of the cgroup {dir} is empty: a v1 cpuset cgroup without CPUs or memory nodes \
         cannot hold a child that has them; fill it from its parent \
         (cat ../{file} > {file} in that directory) or pass another --cgroup-parent"
    )]
    EmptyCpuset { dir: PathBuf, file: &'static str },

    #[error("cgroup parent {parent} {why}: give an absolute cgroup path such as /boxwatch or /system.slice/ci")]
    BadCgroupParent { parent: String, why: &'static str },

    #[error("{action} {path}{hint}")]
    Cgroup {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },

    #[error("the rootfs {path} cannot be used: {why}")]
    BadRootfs { path: PathBuf, why: String },

    /// `missing`: the command was not found (exit 127); else it was found
    /// but cannot be executed (exit 126).
    #[error("the entry command {command:?} cannot run in the container: {why}")]
    BadEntry {
        command: String,
        why: String,
        missing: bool,
    },

    #[error("{workload} must not run without a {limit} limit: set one in the spec (for example {example})")]
    MissingGuardLimit {
        workload: String,
        limit: &'static str,
        example: &'static str,
    },

    #[error("{step} failed")]
    Io {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("container setup failed at step '{step}': {message}")]
    Setup { step: String, message: String },

    #[error("the container process {pid} could not be waited for")]
    Wait {
        pid: i32,
        #[source]
        source: nix::Error,
    },

    #[error("unknown runtime {name:?}: expected builtin, runc, crun, runsc, docker or podman")]
    UnknownBackend { name: String },

    #[error(
        "the OCI runtime {runtime} was not found ({looked}): install it \
         (apt-get install runc crun) or give its path with --runtime-path"
    )]
    OciRuntimeMissing { runtime: String, looked: String },

    #[error("{runtime} cannot run this container: {what}")]
    OciUnsupported { runtime: String, what: String },

    #[error("writing the OCI bundle at {path}")]
    OciBundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{runtime} {step}` failed for container {id}: {message}")]
    OciCommand {
        runtime: String,
        step: &'static str,
        id: String,
        message: String,
    },

    #[error("the pid file {path} written by {runtime} is unusable: {why}")]
    OciPidFile {
        runtime: String,
        path: PathBuf,
        why: String,
    },

    #[error(
        "{runtime}'s container process {pid} is not a child of boxwatch \
         (PR_SET_CHILD_SUBREAPER did not take): it cannot be waited for"
    )]
    OciNotReparented { runtime: String, pid: i32 },

    #[error("the engine {engine} was not found ({looked}): install it (apt-get install docker.io podman) or give its path with --runtime-path")]
    EngineMissing { engine: String, looked: String },

    #[error("{engine} refused: {what}; to fix it: {fix}")]
    EngineRefused {
        engine: String,
        what: String,
        fix: String,
    },

    #[error("`{engine} {step}` failed for container {id}: {message}")]
    EngineCommand {
        engine: String,
        step: &'static str,
        id: String,
        message: String,
    },

    #[error("{runtime}'s sandbox crashed ({exit}): {line}")]
    SandboxCrashed {
        runtime: String,
        exit: String,
        line: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(step: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io { step, source }
    }
}

/// `e` and its causes, outermost first, joined with ": " (what anyhow's
/// `{:#}` prints). Library errors keep their cause as `#[source]` and do not
/// repeat it in their own message; where such an error becomes text (a
/// report's error field, a log line), this prints the whole chain once.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convention: a cause is the `#[source]`, not part of the
    /// message, so a chain printed with `{:#}` (or [`chain`]) shows it once.
    #[test]
    fn a_nested_error_prints_its_cause_once() {
        let io = || std::io::Error::from_raw_os_error(libc::EACCES);
        for e in [
            Error::Cgroup {
                action: "writing",
                path: "/sys/fs/cgroup/x/cpu.max".into(),
                source: io(),
                hint: "",
            },
            Error::Io {
                step: "spawning the container",
                source: io(),
            },
            Error::OciBundle {
                path: "/run/b".into(),
                source: io(),
            },
        ] {
            let text = chain(&e);
            assert_eq!(text.matches("Permission denied").count(), 1, "{text}");
            assert!(!e.to_string().contains("Permission denied"), "{e}");
            assert!(
                text.ends_with(": Permission denied (os error 13)"),
                "{text}"
            );
        }
        let wait = Error::Wait {
            pid: 7,
            source: nix::Error::ECHILD,
        };
        assert_eq!(
            chain(&wait),
            "the container process 7 could not be waited for: ECHILD: No child processes"
        );
    }
}
