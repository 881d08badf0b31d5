//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong loading or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A report file could not be read.
    #[error("cannot read report {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A report file is not valid JSON or does not match the schema.
    #[error("malformed report {}: {source}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The cause, with line and column.
        source: serde_json::Error,
    },
    /// A report file was written with another schema version.
    #[error(
        "report {} has schema_version {found:?}, expected {expected:?}",
        path.display()
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// What the file says (`<missing>` when absent).
        found: String,
        /// What this boxwatch reads.
        expected: &'static str,
    },
    /// An output file or directory could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
