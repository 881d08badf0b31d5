//! The matrix report: scenarios as rows, kernel x cgroup layout as columns.
//! Placeholder until the reports crate's model lands: reads the JSON report
//! of each column generically.

use super::ColumnResult;
use anyhow::Result;
use std::path::Path;

/// Writes matrix.json and matrix.md under `dir`; returns the Markdown.
pub fn write(results: &[ColumnResult], dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let mut md = String::from("| column | status |\n|---|---|\n");
    for r in results {
        let status = match (&r.error, r.job_exit) {
            (Some(e), _) => format!("error: {}", e.lines().next().unwrap_or("")),
            (None, Some(c)) => format!("job exit {c}"),
            (None, None) => "no result".into(),
        };
        md.push_str(&format!("| {} {} | {} |\n", r.kernel, r.cgroup, status));
    }
    std::fs::write(dir.join("matrix.md"), &md)?;
    Ok(md)
}
