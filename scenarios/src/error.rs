//! The scenarios crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong loading the catalog, running a scenario or a
/// workload, and writing its reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file that cannot be used: where and why.
    #[error("{file}:{line}: {reason}")]
    Catalog {
        /// The scenario file.
        file: PathBuf,
        /// The 1-based line of the file the problem is on.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A file or directory could not be read or written.
    #[error("{what} {path}")]
    Io {
        /// What was being done, e.g. "reading the catalog directory".
        what: &'static str,
        /// The file or directory it was done on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The catalog directory (the path) holds no `*.toml` scenario file.
    #[error("the catalog directory {0} holds no scenario files (*.toml)")]
    EmptyCatalog(PathBuf),

    /// The `--only` pattern is not a valid glob.
    #[error("--only {pattern:?} is not a valid glob: {reason}")]
    BadGlob {
        /// The pattern as given.
        pattern: String,
        /// Why the glob parser rejected it.
        reason: String,
    },

    /// The `--only` pattern (given) selects no scenario of the catalog.
    #[error("--only {0:?} matches no scenario of the catalog")]
    NothingSelected(String),

    /// The container runtime failed: opening it, or creating, running or
    /// removing a container.
    #[error(transparent)]
    Runtime(#[from] runtime::Error),

    /// A workload refused to run or could not do its work.
    #[error("workload {workload}: {message}")]
    Workload {
        /// The workload's name, e.g. "probe-inside".
        workload: &'static str,
        /// What went wrong, and the fix where there is one.
        message: String,
    },

    /// A system call failed.
    #[error("{step} failed")]
    Sys {
        /// The call or step that failed, e.g. "pipe2".
        step: &'static str,
        /// The errno it failed with.
        #[source]
        source: nix::Error,
    },

    /// The run's observations or reports cannot be produced (the reason).
    #[error("report: {0}")]
    Report(String),

    /// The value of a command-line flag cannot be used: the flag, and why.
    #[error("{flag}")]
    Flag {
        /// The flag, e.g. "--only".
        flag: &'static str,
        /// Why its value cannot be used.
        #[source]
        source: Box<Error>,
    },

    /// `--baseline FILE` cannot be used.
    #[error("--baseline")]
    Baseline(#[source] reports::Error),

    /// `--out DIR` cannot be written.
    #[error("--out {}: the reports cannot be written there", dir.display())]
    Out {
        /// The `--out` directory.
        dir: PathBuf,
        /// The reports crate's error writing there.
        #[source]
        source: reports::Error,
    },

    /// The host's cgroup layout could not be read.
    #[error("reading the host's cgroup layout")]
    Layout(#[source] probes::Error),
}

/// A result whose error is the scenarios crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}
