//! The scenarios crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file that cannot be used: where and why.
    #[error("{file}:{line}: {reason}")]
    Catalog {
        file: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the catalog directory {0} holds no scenario files (*.toml)")]
    EmptyCatalog(PathBuf),

    #[error("--only {pattern:?} is not a valid glob: {reason}")]
    BadGlob { pattern: String, reason: String },

    #[error("--only {0:?} matches no scenario of the catalog")]
    NothingSelected(String),

    #[error(transparent)]
    Runtime(#[from] runtime::Error),

    #[error("workload {workload}: {message}")]
    Workload {
        workload: &'static str,
        message: String,
    },

    #[error("{step} failed")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },

    #[error("report: {0}")]
    Report(String),

    /// The value of a command-line flag cannot be used: the flag, and why.
    #[error("{flag}")]
    Flag {
        flag: &'static str,
        #[source]
        source: Box<Error>,
    },

    /// `--baseline FILE` cannot be used.
    #[error("--baseline")]
    Baseline(#[source] reports::Error),

    /// `--out DIR` cannot be written.
    #[error("--out {}: the reports cannot be written there", dir.display())]
    Out {
        dir: PathBuf,
        #[source]
        source: reports::Error,
    },

    /// The host's cgroup layout could not be read.
    #[error("reading the host's cgroup layout")]
    Layout(#[source] probes::Error),
}

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
