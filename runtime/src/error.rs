//! The runtime's one error type. Every variant names what failed, and where
//! the user can do something about it, the fix. An underlying error is the
//! variant's `#[source]`, a field named `source`, and never part of its
//! message: [`chain`] (or anyhow's `{:#}`) prints it once, after the message.

use std::path::PathBuf;

/// Everything the runtime can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value (a limit, a size, a name) that boxwatch cannot accept.
    #[error("invalid {what} {value:?}: expected {expected}")]
    InvalidValue {
        /// What the value is for.
        what: &'static str,
        /// The value as given.
        value: String,
        /// What would be accepted.
        expected: String,
    },

    /// A container spec that cannot be run as given.
    #[error("invalid container spec: {0}")]
    InvalidSpec(
        /// What is wrong with it.
        String,
    ),

    /// Neither root nor an unprivileged user namespace is available.
    #[error(
        "not running as root and user namespaces are unavailable ({reason}); \
         run boxwatch as root, or enable unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)"
    )]
    NoPrivilege {
        /// Why user namespaces are unavailable.
        reason: String,
    },

    /// lxcfs could not be started or did not serve its files.
    #[error("lxcfs at {mount_point}: {why}")]
    Lxcfs {
        /// The lxcfs mount point.
        mount_point: PathBuf,
        /// Why, in words.
        why: String,
    },

    /// A step of starting lxcfs failed with an I/O error.
    #[error("lxcfs at {mount_point}: {step}")]
    LxcfsIo {
        /// The lxcfs mount point.
        mount_point: PathBuf,
        /// The step that failed.
        step: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// No cgroup filesystem is mounted where boxwatch looks.
    #[error("no cgroup filesystem is mounted under {root}: mount cgroup2 (or the v1 controllers) there, or run boxwatch where cgroups are available")]
    NoCgroupFs {
        /// Where cgroup filesystems were looked for.
        root: PathBuf,
    },

    /// A limit needs a cgroup controller the host does not give.
    #[error(
        "the {controller} cgroup controller is needed for the {limit} limit but {why}; \
         drop the limit from the spec, or enable the controller \
         (v1: mount it under /sys/fs/cgroup/{controller}; v2: add +{controller} to cgroup.subtree_control of the parent)"
    )]
    MissingController {
        /// The controller.
        controller: String,
        /// The limit that needs it.
        limit: &'static str,
        /// Why, in words.
        why: String,
    },

    /// The cgroup parent does not enable the controllers boxwatch needs.
    #[error(
        "the cgroup {} does not enable [{line}] for its children, and boxwatch did not make it, \
         so it does not write there: run `echo '{line}' > {}/cgroup.subtree_control`, \
         or pass a --cgroup-parent that is delegated to boxwatch",
        dir.display(),
        dir.display()
    )]
    NotDelegated {
        /// The cgroup directory.
        dir: PathBuf,
        /// The line at fault.
        line: String,
    },

    /// A v1 cpuset parent without CPUs or memory nodes.
    #[error(
        "{file} of the cgroup {dir} is empty: a v1 cpuset cgroup without CPUs or memory nodes \
         cannot hold a child that has them; fill it from its parent \
         (cat ../{file} > {file} in that directory) or pass another --cgroup-parent"
    )]
    EmptyCpuset {
        /// The cgroup directory.
        dir: PathBuf,
        /// The control file.
        file: &'static str,
    },

    /// A `--cgroup-parent` that is not an absolute cgroup path.
    #[error("cgroup parent {parent} {why}: give an absolute cgroup path such as /boxwatch or /system.slice/ci")]
    BadCgroupParent {
        /// The parent as given.
        parent: String,
        /// Why, in words.
        why: &'static str,
    },

    /// Reading, writing, creating or removing a cgroup file failed.
    #[error("{action} {path}{hint}")]
    Cgroup {
        /// What was being done (`writing`, `creating`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
        /// A fix to append to the message, or empty.
        hint: &'static str,
    },

    /// The rootfs directory of the spec cannot be used.
    #[error("the rootfs {path} cannot be used: {why}")]
    BadRootfs {
        /// The file or directory.
        path: PathBuf,
        /// Why, in words.
        why: String,
    },

    /// The entry command cannot run in the container.
    #[error("the entry command {command:?} cannot run in the container: {why}")]
    BadEntry {
        /// The command as the spec gives it.
        command: String,
        /// Why, in words.
        why: String,
        /// The command was not found (exit 127); else it was found
        /// but cannot be executed (exit 126).
        missing: bool,
    },

    /// A dangerous workload without the limit that keeps it in check.
    #[error("{workload} must not run without a {limit} limit: set one in the spec (for example {example})")]
    MissingGuardLimit {
        /// The workload.
        workload: String,
        /// The limit that needs it.
        limit: &'static str,
        /// A limit that would do.
        example: &'static str,
    },

    /// A step of the runtime failed with an I/O error.
    #[error("{step} failed")]
    Io {
        /// The step that failed.
        step: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A message on the setup stage's socket that the protocol does not have.
    #[error("malformed message {received:?} on the setup stage's socket: {why}")]
    SetupProtocol {
        /// What arrived.
        received: String,
        /// Why, in words.
        why: &'static str,
    },

    /// The setup stage's config could not be serialised or parsed.
    #[error("the setup stage's config cannot be encoded or decoded")]
    SetupConfig {
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// The setup stage failed at one of its steps (reported on its socket).
    #[error("container setup failed at step '{step}': {message}")]
    Setup {
        /// The step that failed.
        step: String,
        /// What failed, with its cause, as the other side said it.
        message: String,
    },

    /// Waiting for the container's first process failed.
    #[error("the container process {pid} could not be waited for")]
    Wait {
        /// The process.
        pid: i32,
        /// The underlying error.
        #[source]
        source: nix::Error,
    },

    /// A runtime name that is not builtin, runc, crun, runsc, docker or podman.
    #[error("unknown runtime {name:?}: expected builtin, runc, crun, runsc, docker or podman")]
    UnknownBackend {
        /// The name as given.
        name: String,
    },

    /// The OCI runtime's binary was not found.
    #[error(
        "the OCI runtime {runtime} was not found ({looked}): install it \
         (apt-get install runc crun) or give its path with --runtime-path"
    )]
    OciRuntimeMissing {
        /// The OCI runtime (runc, crun, runsc).
        runtime: String,
        /// Where it was looked for.
        looked: String,
    },

    /// The OCI runtime cannot run what the spec asks for.
    #[error("{runtime} cannot run this container: {what}")]
    OciUnsupported {
        /// The OCI runtime (runc, crun, runsc).
        runtime: String,
        /// What the value is for.
        what: String,
    },

    /// The OCI config of a bundle could not be built or serialised.
    #[error("{what}")]
    OciConfig {
        /// What the value is for.
        what: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The seccomp profile could not be compiled to BPF.
    #[error("building the seccomp filter")]
    Seccomp {
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Writing an OCI bundle failed.
    #[error("writing the OCI bundle at {path}")]
    OciBundle {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A command of the OCI runtime failed.
    #[error("`{runtime} {step}` failed for container {id}: {message}")]
    OciCommand {
        /// The OCI runtime (runc, crun, runsc).
        runtime: String,
        /// The step that failed.
        step: &'static str,
        /// The OCI container id.
        id: String,
        /// What failed, with its cause, as the other side said it.
        message: String,
    },

    /// The OCI runtime's binary could not be run at all.
    #[error("`{runtime} {step}` failed for container {id}: could not run {binary}")]
    OciRun {
        /// The OCI runtime (runc, crun, runsc).
        runtime: String,
        /// The step that failed.
        step: &'static str,
        /// The OCI container id.
        id: String,
        /// The binary that was run.
        binary: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The pid file the OCI runtime wrote cannot be used.
    #[error("the pid file {path} written by {runtime} is unusable: {why}")]
    OciPidFile {
        /// The OCI runtime (runc, crun, runsc).
        runtime: String,
        /// The file or directory.
        path: PathBuf,
        /// Why, in words.
        why: String,
    },

    /// The OCI runtime's container process did not become boxwatch's child.
    #[error(
        "{runtime}'s container process {pid} is not a child of boxwatch \
         (PR_SET_CHILD_SUBREAPER did not take): it cannot be waited for"
    )]
    OciNotReparented {
        /// The OCI runtime (runc, crun, runsc).
        runtime: String,
        /// The process.
        pid: i32,
    },

    /// The engine's CLI (docker, podman) was not found.
    #[error("the engine {engine} was not found ({looked}): install it (apt-get install docker.io podman) or give its path with --runtime-path")]
    EngineMissing {
        /// `docker` or `podman`.
        engine: String,
        /// Where it was looked for.
        looked: String,
    },

    /// The engine refused what boxwatch asked for, for a reason a setting
    /// of the host or the engine can change.
    #[error("{engine} refused: {what}; to fix it: {fix}")]
    EngineRefused {
        /// `docker` or `podman`.
        engine: String,
        /// What it refused, in its words.
        what: String,
        /// The setting to change.
        fix: String,
    },

    /// A step of the engine's CLI failed for a container.
    #[error("`{engine} {step}` failed for container {id}: {message}")]
    EngineCommand {
        /// `docker` or `podman`.
        engine: String,
        /// The subcommand (`create`, `start`, `inspect`, ...).
        step: &'static str,
        /// The container.
        id: String,
        /// The engine's stderr.
        message: String,
    },

    /// A sandboxed runtime (runsc) crashed.
    #[error("{runtime}'s sandbox crashed ({exit}): {line}")]
    SandboxCrashed {
        /// The OCI runtime (runc, crun, runsc).
        runtime: String,
        /// How its process ended.
        exit: String,
        /// The line at fault.
        line: String,
    },
}

/// The runtime's result.
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
        let nested = Error::OciConfig {
            what: "building the OCI config".into(),
            source: Box::new(Error::LxcfsIo {
                mount_point: "/run/boxwatch/r/lxcfs".into(),
                step: "creating the mount point".into(),
                source: io(),
            }),
        };
        let text = chain(&nested);
        assert_eq!(
            text,
            "building the OCI config: lxcfs at /run/boxwatch/r/lxcfs: \
             creating the mount point: Permission denied (os error 13)"
        );
        let run = Error::OciRun {
            runtime: "runc".into(),
            step: "create",
            id: "c1".into(),
            binary: "/usr/sbin/runc".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        let text = chain(&run);
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        assert_eq!(text.matches("/usr/sbin/runc").count(), 1, "{text}");
        let seccomp = Error::Seccomp {
            source: "a filter of 5000 instructions is too long".into(),
        };
        assert_eq!(
            chain(&seccomp),
            "building the seccomp filter: a filter of 5000 instructions is too long"
        );
        let wait = Error::Wait {
            pid: 7,
            source: nix::Error::ECHILD,
        };
        assert_eq!(
            chain(&wait),
            "the container process 7 could not be waited for: ECHILD: No child processes"
        );
    }

    /// The rule behind the test above, for every variant: no `#[error]`
    /// message prints a field that is a `#[source]` (all are named
    /// `source`), nor a bare `{0}` of a wrapped error.
    #[test]
    fn no_message_repeats_its_source() {
        let text = include_str!("error.rs");
        let enum_body =
            &text[text.find("pub enum Error").unwrap()..text.find("pub type Result").unwrap()];
        let messages: Vec<&str> = enum_body
            .split("#[error(")
            .skip(1)
            .map(|m| &m[..m.find(")]\n").unwrap()])
            .collect();
        assert!(messages.len() > 20, "{}", messages.len());
        for m in messages {
            assert!(
                !m.contains("{source") && !m.contains("source.") && !m.contains("{cause"),
                "{m}"
            );
        }
        assert_eq!(
            enum_body.matches("#[source]").count(),
            enum_body.matches("source:").count()
        );
        assert!(!enum_body.contains("#[from]"));
    }
}
