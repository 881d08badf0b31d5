//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong loading or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A report file could not be read.
    #[error("cannot read report {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A report file is not valid JSON or does not match the schema.
    #[error(
        "{} is not a boxwatch JSON report ({})",
        path.display(),
        if source.is_data() { "it is JSON, but not of a report's shape" } else { "it is not JSON" }
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The cause, with line and column.
        #[source]
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
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `e` and its causes, outermost first, joined with ": " (what anyhow's
/// `{:#}` prints). This crate's errors keep their cause as `#[source]` and
/// do not repeat it in their message; where one becomes text (a note, a
/// report's error field), this prints the whole chain once.
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

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
