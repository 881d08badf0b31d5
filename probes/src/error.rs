//! The one error type of the probes crate.

use std::path::PathBuf;

/// Everything that can go wrong while the judge reads the kernel's files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel file or directory could not be read for a reason other than
    /// "it is gone" (a vanished cgroup or process is reported as `None` or
    /// [`Error::CgroupNotFound`], never as this).
    #[error("reading {path}")]
    Io {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// What the system call returned.
        #[source]
        source: std::io::Error,
    },
    /// A kernel file did not have the expected format.
    #[error("parsing {path}")]
    Parse {
        /// The file whose text did not match.
        path: PathBuf,
        /// What was expected and what was found.
        #[source]
        source: ParseError,
    },
    /// The cgroup exists in none of the hierarchies (never created, or
    /// removed before or during the read).
    #[error("cgroup {0} does not exist in any hierarchy")]
    CgroupNotFound(String),
    /// No cgroup filesystem is mounted according to the given mountinfo.
    #[error("no cgroup filesystem is mounted (according to {0})")]
    NoCgroupMounts(PathBuf),
    /// A cgroup path given by the caller is not a clean absolute path.
    #[error("invalid cgroup path {path:?}: {why}")]
    BadCgroupPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The process does not exist (or exited during the read).
    #[error("process {0} does not exist")]
    NoSuchProcess(i32),
    /// `boxwatch inspect` was pointed at a process that shares every
    /// namespace with the host (`reference`: whose namespaces stood for
    /// the host's): there is no container to look into.
    #[error("process {pid} ({command}) is not in a container: it shares every namespace with {reference}")]
    NotAContainer {
        /// The process given.
        pid: i32,
        /// Its command name (`/proc/<pid>/comm`).
        command: String,
        /// The process whose namespaces stood for the host's.
        reference: String,
    },
    /// `boxwatch inspect --cgroup` was pointed at a cgroup with no process.
    #[error("cgroup {0} holds no process: there is nothing to enter (its limits can be read with the exporter)")]
    EmptyCgroup(String),
    /// An engine's CLI (`docker`, `podman`) could not be started.
    #[error("running `{command}`")]
    EngineSpawn {
        /// The command line, as a person would type it.
        command: String,
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },
    /// An engine's CLI failed for a reason other than "no such container"
    /// (its daemon unreachable, a permission refused): `said` is its
    /// stderr.
    #[error("`{command}` failed: {said}")]
    EngineFailed {
        /// The command line.
        command: String,
        /// Its stderr, trimmed.
        said: String,
    },
    /// An engine's inspect output is not what docker and podman print.
    #[error("reading the output of `{command}`: {why}")]
    EngineOutput {
        /// The command line.
        command: String,
        /// What was wrong with its output.
        why: String,
    },
    /// No engine knows the container (`tried`: each engine asked and what
    /// it answered).
    #[error("no container {name:?}: {tried}")]
    ContainerNotFound {
        /// The name or id given.
        name: String,
        /// Each engine asked and what it answered.
        tried: String,
    },
    /// A bare name or id that both docker and podman know.
    #[error("{name:?} is a container of both docker ({docker}) and podman ({podman}): say docker:{name} or podman:{name}")]
    AmbiguousContainer {
        /// The name or id given.
        name: String,
        /// Docker's (short) id for it.
        docker: String,
        /// Podman's (short) id for it.
        podman: String,
    },
    /// The engine knows the container, but it has no process to judge.
    #[error("{engine} container {name} is not running (status {status}): there is no process to judge; start it, or inspect a running one")]
    ContainerNotRunning {
        /// `docker` or `podman`.
        engine: String,
        /// The name or id given.
        name: String,
        /// The engine's status word (`exited`, `created`, ...).
        status: String,
    },
}

/// A kernel file's text did not match its format. Produced by the pure
/// parsers in [`crate::host::parse`]; carries what was expected and the
/// offending piece of text (shortened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found:?}")]
pub struct ParseError {
    /// What the format has at this place.
    pub expected: &'static str,
    /// The text found instead, cut to 80 characters.
    pub found: String,
}

impl ParseError {
    /// A parse error; `found` is cut to 80 characters.
    pub fn new(expected: &'static str, found: &str) -> Self {
        ParseError {
            expected,
            found: found.chars().take(80).collect(),
        }
    }
}

/// `e` and its causes, outermost first, joined with ": " (what anyhow's
/// `{:#}` prints). The crates' errors keep their cause as `#[source]` and do
/// not repeat it in their own message; where such an error becomes text (a
/// log line, a report field, a note), this prints the whole chain once.
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

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
