//! The one error type of the exporter crate.

use std::path::PathBuf;

/// What can stop the exporter. Per-scrape problems (a cgroup that vanished,
/// an unreadable report) never become an `Error`: they show up as metrics
/// and log lines instead, and the scrape still answers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("--listen {addr}: cannot listen there")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why bind(2) failed.
        #[source]
        source: std::io::Error,
    },
    /// Any other I/O failure of the server itself.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The host view could not be set up.
    #[error(transparent)]
    Probes(#[from] probes::Error),
    /// The Prometheus registry refused a collector or failed to encode.
    #[error(transparent)]
    Prometheus(#[from] prometheus::Error),
    /// The latest report could not be read or understood.
    #[error("--report {path}: {why}")]
    Report {
        /// The report file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The `--web.config.file` is refused.
    #[error("web configuration {path}: {why}")]
    WebConfig {
        /// The configuration file.
        path: PathBuf,
        /// What is refused.
        why: String,
        /// The underlying error (YAML, TLS, bcrypt), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A command-line value is unusable.
    #[error("invalid argument: {0}")]
    BadArgument(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
